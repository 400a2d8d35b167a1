/* N non-blocking connects from one epoll loop, as an event-driven program makes them.
 *   parallel_connect HOST PORT N
 * Prints "total_ms T in_connect_ms C ok K": the time until every connect's outcome was known
 * (writable, SO_ERROR read), the time spent inside connect() calls, and how many succeeded.
 * Each socket then sends one line and reads the echo, so a connect that "succeeded" without a
 * working stream does not count. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: parallel_connect HOST PORT N\n");
    return 2;
  }
  const int n = atoi(argv[3]);
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) return 1;
  int* fds = calloc((size_t)n, sizeof(int));
  const int ep = epoll_create1(0);
  double in_connect = 0;
  const double t0 = now_ms();
  for (int i = 0; i < n; ++i) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct epoll_event ev = {0};
    ev.events = EPOLLOUT;
    ev.data.u32 = (unsigned)i;
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    const double c0 = now_ms();
    const int rc = connect(fds[i], ai->ai_addr, ai->ai_addrlen);
    in_connect += now_ms() - c0;
    if (rc != 0 && errno != EINPROGRESS) {
      fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
      return 1;
    }
  }
  int pending = n, ok = 0;
  struct epoll_event evs[128];
  while (pending > 0) {
    const int k = epoll_wait(ep, evs, 128, 30000);
    if (k <= 0) break;
    for (int j = 0; j < k; ++j) {
      const int i = (int)evs[j].data.u32;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
      epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
      --pending;
      if (err == 0) ++ok;
    }
  }
  const double total = now_ms() - t0;
  int echoed = 0;
  for (int i = 0; i < n; ++i) {
    fcntl(fds[i], F_SETFL, 0);
    char buf[8];
    if (send(fds[i], "x\n", 2, MSG_NOSIGNAL) == 2 && recv(fds[i], buf, 2, MSG_WAITALL) == 2) ++echoed;
    close(fds[i]);
  }
  printf("total_ms %.2f in_connect_ms %.2f ok %d echoed %d\n", total, in_connect, ok, echoed);
  return ok == n && echoed == n ? 0 : 1;
}
