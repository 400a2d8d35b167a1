/* N connects in a row, each closed at once, to HOST PORT (blocking sockets). Built twice by
 * bench.py: dynamically linked (for the preloaded library) and static (for the supervisor).
 *   connect_loop HOST PORT N
 * Prints "per_connect_us U ok K". */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: connect_loop HOST PORT N\n");
    return 2;
  }
  struct addrinfo hints = {0}, *ai = NULL;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) return 1;
  const int n = atoi(argv[3]);
  int ok = 0;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) ++ok;
    close(fd);
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n;
  printf("per_connect_us %.1f ok %d\n", us, ok);
  return ok == n ? 0 : 1;
}
