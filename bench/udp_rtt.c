/* The UDP part of the benchmark.
 *   udp_rtt echo ADDR PORT LOG        an echo server; logs the first peer's address to LOG
 *   udp_rtt client ADDR PORT COUNT    COUNT round trips of 64-octet datagrams (sendto, then
 *                                     recvfrom; a lost one is sent again after 1 s, 5 times at
 *                                     most); prints "rtt/s N lost L"
 * Every loop is bounded by COUNT and by the resend limit. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[3]));
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char buf[2048];
  if (strcmp(argv[1], "echo") == 0) {
    if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) return 1;
    int logged = 0;
    for (;;) {
      struct sockaddr_in from;
      socklen_t len = sizeof from;
      ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr*)&from, &len);
      if (n < 0) continue;
      if (!logged) {
        FILE* f = fopen(argv[4], "a");
        if (f) {
          fprintf(f, "udp %s\n", inet_ntoa(from.sin_addr));
          fclose(f);
        }
        logged = 1;
      }
      sendto(fd, buf, (size_t)n, 0, (struct sockaddr*)&from, len);
    }
  }
  long count = atol(argv[4]);
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char out[64];
  memset(out, 'x', sizeof out);
  long lost = 0;
  double t0 = now();
  for (long i = 0; i < count; ++i) {
    memcpy(out, &i, sizeof i);
    int ok = 0;
    for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
      if (sendto(fd, out, sizeof out, 0, (struct sockaddr*)&a, sizeof a) != (ssize_t)sizeof out) {
        perror("sendto");
        return 1;
      }
      for (;;) {
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, NULL, NULL);
        if (n < 0) {
          ++lost;
          break;
        }
        if (n == (ssize_t)sizeof out && memcmp(buf, &i, sizeof i) == 0) {
          ok = 1;
          break;
        }
      }
    }
    if (!ok) {
      fprintf(stderr, "round trip %ld never came back\n", i);
      return 1;
    }
  }
  double t = now() - t0;
  printf("rtt/s %.0f lost %ld\n", (double)count / t, lost);
  return 0;
}
