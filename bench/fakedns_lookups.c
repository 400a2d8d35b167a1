/* The fake-DNS table's cost, seen by a program: ADD names resolved for the first time
 * (getaddrinfo gives each a new fake address), then AGAIN resolutions of names already
 * given (the same address back), then REVERSE getnameinfo calls on those addresses (the
 * name back without asking anyone). Run preloaded with remote DNS; prints the wall-clock
 * nanoseconds per call of each phase. Instructions per call come from running it under
 * callgrind with two counts and taking the difference.
 *   fakedns_lookups ADD AGAIN REVERSE */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int resolve(long i, struct sockaddr_in* out) {
  char name[64];
  snprintf(name, sizeof name, "n%ld.lookups.bench", i);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = NULL;
  if (getaddrinfo(name, "80", &hints, &res) != 0 || res == NULL) return -1;
  if (out != NULL) memcpy(out, res->ai_addr, sizeof *out);
  freeaddrinfo(res);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ADD AGAIN REVERSE\n", argv[0]);
    return 2;
  }
  const long add = atol(argv[1]), again = atol(argv[2]), reverse = atol(argv[3]);
  struct sockaddr_in* seen = calloc((size_t)(add > 0 ? add : 1), sizeof *seen);
  if (seen == NULL) return 1;
  double t0 = now_ns();
  for (long i = 0; i < add; i++) {
    if (resolve(i, &seen[i]) != 0) {
      fprintf(stderr, "getaddrinfo failed at %ld\n", i);
      return 1;
    }
  }
  double t1 = now_ns();
  for (long i = 0; i < again; i++) {
    struct sockaddr_in a;
    if (resolve(i % add, &a) != 0 || a.sin_addr.s_addr != seen[i % add].sin_addr.s_addr) {
      fprintf(stderr, "a name changed its address at %ld\n", i);
      return 1;
    }
  }
  double t2 = now_ns();
  for (long i = 0; i < reverse; i++) {
    char host[256];
    if (getnameinfo((struct sockaddr*)&seen[i % add], sizeof seen[0], host, sizeof host, NULL, 0,
                    NI_NAMEREQD) != 0) {
      fprintf(stderr, "getnameinfo failed at %ld\n", i);
      return 1;
    }
  }
  double t3 = now_ns();
  printf("add_ns %.0f again_ns %.0f reverse_ns %.0f\n", add ? (t1 - t0) / (double)add : 0.0,
         again ? (t2 - t1) / (double)again : 0.0, reverse ? (t3 - t2) / (double)reverse : 0.0);
  free(seen);
  return 0;
}
