/* N non-blocking connects from one epoll loop, as an event-driven program makes them.
 *   parallel_connect HOST PORT N
 * Prints "total_ms T in_connect_ms C ok K": the time until every connect's outcome was known
 * (writable, SO_ERROR read), the time spent inside connect() calls, and how many succeeded.
 * Each socket then sends one line and reads the echo, so a connect that "succeeded" without a
 * working stream does not count. "cpu_us" is the process's CPU time (user + system, every
 * thread) from the first connect until every outcome was known.
 *   parallel_connect HOST PORT N --socks5 PROXY PROXY_PORT
 * does the SOCKS5 exchange itself, in the same loop (greeting and request sent together, as
 * socksify sends them to a proxy it knows): the floor for any client through that proxy. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double cpu_us(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 7 && strcmp(argv[4], "--socks5") == 0)) {
    fprintf(stderr, "usage: parallel_connect HOST PORT N [--socks5 PROXY PROXY_PORT]\n");
    return 2;
  }
  const int n = atoi(argv[3]);
  const int native = argc == 7;
  struct addrinfo hints = {0}, *ai = NULL, *dest = NULL;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(native ? argv[5] : argv[1], native ? argv[6] : argv[2], &hints, &ai) != 0)
    return 1;
  if (getaddrinfo(argv[1], argv[2], &hints, &dest) != 0) return 1;
  /* The native exchange: greeting (no auth) and CONNECT to an IPv4 address, then the method
   * reply (2 octets) and the CONNECT reply (10 octets). */
  unsigned char hello[3 + 10] = {5, 1, 0, 5, 1, 0, 1};
  const struct sockaddr_in* d = (const struct sockaddr_in*)dest->ai_addr;
  memcpy(hello + 7, &d->sin_addr, 4);
  memcpy(hello + 11, &d->sin_port, 2);
  int* got = calloc((size_t)n, sizeof(int));
  int* fds = calloc((size_t)n, sizeof(int));
  const int ep = epoll_create1(0);
  double in_connect = 0;
  const double cpu0 = cpu_us();
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
    const int k = epoll_wait(ep, evs, 128, 10000);
    if (k <= 0) break;
    for (int j = 0; j < k; ++j) {
      const int i = (int)evs[j].data.u32;
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
      if (native && err == 0) {
        unsigned char r[12];
        if (got[i] == 0) { /* connected to the proxy: both messages at once, then wait */
          got[i] =
              send(fds[i], hello, sizeof hello, MSG_NOSIGNAL) == (ssize_t)sizeof hello ? 1 : -1;
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
          epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
          if (got[i] > 0) continue;
        } else {
          const ssize_t k2 = recv(fds[i], r, (size_t)(13 - got[i]), 0);
          if (k2 < 0 && errno == EAGAIN) continue;
          got[i] = k2 > 0 ? got[i] + (int)k2 : -1;
          if (got[i] > 0 && got[i] < 13) continue;
        }
        if (got[i] != 13) err = EPROTO;
      }
      epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
      --pending;
      if (err == 0) ++ok;
    }
  }
  const double total = now_ms() - t0;
  const double cpu = cpu_us() - cpu0;
  int echoed = 0;
  for (int i = 0; i < n; ++i) {
    fcntl(fds[i], F_SETFL, 0);
    char buf[8];
    if (send(fds[i], "x\n", 2, MSG_NOSIGNAL) == 2 && recv(fds[i], buf, 2, MSG_WAITALL) == 2)
      ++echoed;
    close(fds[i]);
  }
  printf("total_ms %.2f in_connect_ms %.2f ok %d echoed %d cpu_us %.0f\n", total, in_connect, ok,
         echoed, cpu);
  return ok == n && echoed == n ? 0 : 1;
}
