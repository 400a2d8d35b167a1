/* A TCP relay that delays every chunk by DELAY_MS in each direction: an emulated round trip
 * of 2 x DELAY_MS in front of a proxy (the kernel here has no netem). One epoll loop, a
 * queue of timed chunks per direction, order kept. Light enough that the relay itself does
 * not limit a benchmark of many parallel connections on two cores.
 *   delay_relay LISTEN_ADDR LISTEN_PORT UP_ADDR UP_PORT DELAY_MS */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct chunk {
  struct chunk* next;
  double due;
  size_t len, off;
  char data[];
};

struct side {  /* one direction: read from `from`, write to `to` after the delay */
  int from, to;
  struct chunk *head, *tail;
  int eof, shut;
};

struct conn {
  struct side up, down;  /* client->proxy, proxy->client */
  int closed;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double delay;
static int ep;
static struct conn* conns[8192];  /* the open ones, packed */
static int nconns;

static void watch(int fd, struct conn* c) {
  struct epoll_event ev = {0};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = c;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void pump_read(struct side* s) {
  for (;;) {
    char buf[65536];
    const ssize_t n = recv(s->from, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      struct chunk* k = malloc(sizeof *k + (size_t)n);
      k->next = NULL;
      k->due = now_ms() + delay;
      k->len = (size_t)n;
      k->off = 0;
      memcpy(k->data, buf, (size_t)n);
      if (s->tail) s->tail->next = k; else s->head = k;
      s->tail = k;
      continue;
    }
    if (n == 0 && !s->eof) {
      s->eof = 1;
      struct chunk* k = malloc(sizeof *k);  /* an empty chunk: the FIN, delayed too */
      k->next = NULL;
      k->due = now_ms() + delay;
      k->len = k->off = 0;
      if (s->tail) s->tail->next = k; else s->head = k;
      s->tail = k;
    }
    return;
  }
}

/* Writes what is due; returns the time of the next due chunk (or 0). */
static double pump_write(struct side* s) {
  const double t = now_ms();
  while (s->head && s->head->due <= t) {
    struct chunk* k = s->head;
    if (k->len == 0) {
      if (!s->shut) shutdown(s->to, SHUT_WR);
      s->shut = 1;
    } else {
      while (k->off < k->len) {
        const ssize_t n = send(s->to, k->data + k->off, k->len - k->off, MSG_NOSIGNAL);
        if (n <= 0) break;  /* blocking socket: only errors */
        k->off += (size_t)n;
      }
    }
    s->head = k->next;
    if (!s->head) s->tail = NULL;
    free(k);
  }
  return s->head ? s->head->due : 0;
}

int main(int argc, char** argv) {
  if (argc != 6) return 2;
  delay = atof(argv[5]);
  struct sockaddr_in la = {0}, ua = {0};
  la.sin_family = ua.sin_family = AF_INET;
  inet_pton(AF_INET, argv[1], &la.sin_addr);
  la.sin_port = htons((unsigned short)atoi(argv[2]));
  inet_pton(AF_INET, argv[3], &ua.sin_addr);
  ua.sin_port = htons((unsigned short)atoi(argv[4]));
  const int l = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr*)&la, sizeof la) != 0 || listen(l, 1024) != 0) return 1;
  ep = epoll_create1(0);
  struct epoll_event lev = {0};
  lev.events = EPOLLIN;
  lev.data.ptr = NULL;
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &lev);
  for (;;) {
    /* The nearest due chunk bounds the wait. */
    double next = 0;
    for (int i = 0; i < nconns;) {
      struct conn* c = conns[i];
      const double a = pump_write(&c->up), b = pump_write(&c->down);
      if (a && (!next || a < next)) next = a;
      if (b && (!next || b < next)) next = b;
      if (c->up.shut && c->down.shut) {
        close(c->up.from);
        close(c->down.from);
        conns[i] = conns[--nconns];
        free(c);
        continue;
      }
      ++i;
    }
    int wait = -1;
    if (next) {
      wait = (int)(next - now_ms() + 0.999);
      if (wait < 0) wait = 0;
    }
    struct epoll_event evs[256];
    const int n = epoll_wait(ep, evs, 256, wait);
    for (int i = 0; i < n; ++i) {
      struct conn* c = evs[i].data.ptr;
      if (!c) {
        const int cfd = accept(l, NULL, NULL);
        if (cfd < 0) continue;
        const int ufd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(ufd, (struct sockaddr*)&ua, sizeof ua) != 0 || nconns == 8192) {
          close(cfd);
          close(ufd);
          continue;
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = calloc(1, sizeof *c);
        c->up.from = cfd;
        c->up.to = ufd;
        c->down.from = ufd;
        c->down.to = cfd;
        conns[nconns++] = c;
        watch(cfd, c);
        watch(ufd, c);
        continue;
      }
      pump_read(&c->up);
      pump_read(&c->down);
      if (c->up.eof) epoll_ctl(ep, EPOLL_CTL_DEL, c->up.from, NULL);
      if (c->down.eof) epoll_ctl(ep, EPOLL_CTL_DEL, c->down.from, NULL);
    }
  }
}
