#include "tls.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

namespace socksify::relay {
namespace {

// The functions used, resolved from libssl.so.3 (and its libcrypto) on first use.
struct Ssl {
  decltype(&TLS_client_method) client_method;
  decltype(&SSL_CTX_new) ctx_new;
  decltype(&SSL_CTX_free) ctx_free;
  decltype(&SSL_CTX_set_default_verify_dir) default_dir;
  decltype(&SSL_CTX_set_default_verify_file) default_file;
  decltype(&SSL_CTX_load_verify_locations) load_locations;
  decltype(&SSL_CTX_set_verify) set_verify;
  decltype(&SSL_CTX_ctrl) ctx_ctrl;
  decltype(&SSL_CTX_set_options) ctx_options;
  decltype(&SSL_new) ssl_new;
  decltype(&SSL_free) ssl_free;
  decltype(&SSL_set_fd) set_fd;
  decltype(&SSL_ctrl) ctrl;
  decltype(&SSL_set1_host) set1_host;
  decltype(&SSL_get0_param) get0_param;
  decltype(&X509_VERIFY_PARAM_set1_ip_asc) set1_ip;
  decltype(&SSL_connect) connect;
  decltype(&SSL_get_error) get_error;
  decltype(&SSL_read) read;
  decltype(&SSL_write) write;
  decltype(&SSL_pending) pending;
  decltype(&SSL_shutdown) shutdown;
  decltype(&SSL_get_verify_result) verify_result;
  decltype(&X509_verify_cert_error_string) verify_text;
  decltype(&ERR_get_error) err_get;
  decltype(&ERR_error_string_n) err_text;
};

template <typename F>
bool resolve(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  return f != nullptr;
}

const Ssl* load() {
  static const Ssl* loaded = []() -> const Ssl* {
    void* lib = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    auto* s = new Ssl;
    const bool ok =
        resolve(lib, "TLS_client_method", s->client_method) &&
        resolve(lib, "SSL_CTX_new", s->ctx_new) && resolve(lib, "SSL_CTX_free", s->ctx_free) &&
        resolve(lib, "SSL_CTX_set_default_verify_dir", s->default_dir) &&
        resolve(lib, "SSL_CTX_set_default_verify_file", s->default_file) &&
        resolve(lib, "SSL_CTX_load_verify_locations", s->load_locations) &&
        resolve(lib, "SSL_CTX_set_verify", s->set_verify) &&
        resolve(lib, "SSL_CTX_ctrl", s->ctx_ctrl) &&
        resolve(lib, "SSL_CTX_set_options", s->ctx_options) &&
        resolve(lib, "SSL_new", s->ssl_new) && resolve(lib, "SSL_free", s->ssl_free) &&
        resolve(lib, "SSL_set_fd", s->set_fd) && resolve(lib, "SSL_ctrl", s->ctrl) &&
        resolve(lib, "SSL_set1_host", s->set1_host) &&
        resolve(lib, "SSL_get0_param", s->get0_param) &&
        resolve(lib, "X509_VERIFY_PARAM_set1_ip_asc", s->set1_ip) &&
        resolve(lib, "SSL_connect", s->connect) && resolve(lib, "SSL_get_error", s->get_error) &&
        resolve(lib, "SSL_read", s->read) && resolve(lib, "SSL_write", s->write) &&
        resolve(lib, "SSL_pending", s->pending) && resolve(lib, "SSL_shutdown", s->shutdown) &&
        resolve(lib, "SSL_get_verify_result", s->verify_result) &&
        resolve(lib, "X509_verify_cert_error_string", s->verify_text) &&
        resolve(lib, "ERR_get_error", s->err_get) &&
        resolve(lib, "ERR_error_string_n", s->err_text);
    if (!ok) {
      delete s;
      return nullptr;
    }
    return s;
  }();
  return loaded;
}

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

void make_nonblocking(int fd) {
  const int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK) == 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

constexpr std::size_t kMaxPending = 1u << 20;  // per direction, then that side waits

// Octets waiting for one side.
struct Queue {
  std::vector<char> data;
  std::size_t off = 0;
  bool empty() const { return off >= data.size(); }
  std::size_t size() const { return data.size() - off; }
  void consumed(std::size_t n) {
    off += n;
    if (off >= data.size()) {
      data.clear();
      off = 0;
    }
  }
};

}  // namespace

struct TlsClient::State {
  const Ssl* ssl = nullptr;
  SSL_CTX* ctx = nullptr;
  SSL* conn = nullptr;
  int fd = -1;
  Queue up;    // plaintext for the proxy
  Queue down;  // plaintext for the local side
  bool plain_eof = false;
  bool tls_eof = false;
  bool sent_close = false;
  bool heard = false;  // the local side has sent something (hold_down)
  // The TLS connection failed (a reset, a record that does not verify): what was already
  // received and verified still goes to the local side, which is then reset, so that it never
  // takes a corrupted stream for a complete one.
  bool broken = false;
};

TlsClient::TlsClient() : s_(new State) {}

TlsClient::~TlsClient() {
  if (s_->conn != nullptr) s_->ssl->ssl_free(s_->conn);
  if (s_->ctx != nullptr) s_->ssl->ctx_free(s_->ctx);
  delete s_;
}

TlsResult TlsClient::handshake(int fd, const TlsOptions& options, int deadline_ms) {
  const Ssl* ssl = load();
  if (ssl == nullptr) {
    const char* why = dlerror();
    detail_ = std::string("cannot load libssl.so.3") + (why != nullptr ? ": " : "") +
              (why != nullptr ? why : "");
    return TlsResult::unavailable;
  }
  s_->ssl = ssl;
  s_->fd = fd;
  make_nonblocking(fd);
  s_->ctx = ssl->ctx_new(ssl->client_method());
  if (s_->ctx == nullptr) {
    detail_ = "cannot make a TLS context";
    return TlsResult::unavailable;
  }
  ssl->ctx_ctrl(s_->ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, nullptr);
  // A proxy that closes its TCP connection without close_notify (many do) ends the stream as
  // a FIN would, after everything it sent: the program's own protocol (HTTP's lengths, TLS
  // inside the tunnel) judges whether that was complete, as through a plain proxy. A reset
  // instead would make the kernel drop what the program had not read yet.
  ssl->ctx_options(s_->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // The system store as a hashed directory (Debian's /etc/ssl/certs): certificates are read
  // when a chain asks for them. Loading the whole bundle file instead costs about 60 ms per
  // connection.
  ssl->default_dir(s_->ctx);
  if (!options.ca_file.empty() &&
      ssl->load_locations(s_->ctx, options.ca_file.c_str(), nullptr) != 1) {
    detail_ = "cannot read the CA file " + options.ca_file;
    return TlsResult::certificate;
  }
  ssl->set_verify(s_->ctx, SSL_VERIFY_PEER, nullptr);
  s_->conn = ssl->ssl_new(s_->ctx);
  if (s_->conn == nullptr || ssl->set_fd(s_->conn, fd) != 1) {
    detail_ = "cannot make a TLS connection";
    return TlsResult::unavailable;
  }
  unsigned char ip[16];
  const bool literal = inet_pton(AF_INET, options.host.c_str(), ip) == 1 ||
                       inet_pton(AF_INET6, options.host.c_str(), ip) == 1;
  if (literal) {
    // An address: checked against the certificate's IP entries; no SNI (RFC 6066 §3).
    ssl->set1_ip(ssl->get0_param(s_->conn), options.host.c_str());
  } else {
    ssl->ctrl(s_->conn, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
              const_cast<char*>(options.host.c_str()));
    ssl->set1_host(s_->conn, options.host.c_str());
  }
  const auto until = Clock::now() + std::chrono::milliseconds(deadline_ms);
  for (;;) {
    const int r = ssl->connect(s_->conn);
    if (r == 1) return TlsResult::up;
    const int e = ssl->get_error(s_->conn, r);
    short events = 0;
    if (e == SSL_ERROR_WANT_READ) events = POLLIN;
    if (e == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0) {
      const long v = ssl->verify_result(s_->conn);
      if (v != X509_V_OK) {
        detail_ = std::string("certificate verify failed: ") + ssl->verify_text(v);
        return TlsResult::certificate;
      }
      char text[256] = "";
      const unsigned long code = ssl->err_get();
      if (code != 0) ssl->err_text(code, text, sizeof text);
      detail_ = code != 0 ? text : "the proxy closed the connection during the TLS handshake";
      return TlsResult::handshake;
    }
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, ms_left(until));
    if (n == 0) {
      detail_ = "no TLS handshake in time";
      return TlsResult::timed_out;
    }
    if (n < 0 && errno != EINTR) {
      detail_ = std::strerror(errno);
      return TlsResult::handshake;
    }
  }
}

void TlsClient::drain_up(int plain) {
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(plain, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      s_->up.data.insert(s_->up.data.end(), buf, buf + n);
      s_->heard = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

void TlsClient::put_front(const socks5::Bytes& octets) {
  Queue& q = s_->down;
  q.data.erase(q.data.begin(), q.data.begin() + static_cast<std::ptrdiff_t>(q.off));
  q.off = 0;
  q.data.insert(q.data.begin(), octets.begin(), octets.end());
}

TlsStop TlsClient::relay(int plain, int control, bool hold_down, bool tunnel) {
  State& st = *s_;
  const Ssl& ssl = *st.ssl;
  make_nonblocking(plain);
  st.plain_eof = false;
  char buf[16384];
  for (;;) {
    bool moved = false;
    bool write_wants_read = false, read_wants_write = false;
    // Local side -> proxy.
    if (!st.up.empty() && !st.broken) {
      const int n =
          ssl.write(st.conn, st.up.data.data() + st.up.off, static_cast<int>(st.up.size()));
      if (n > 0) {
        st.up.consumed(static_cast<std::size_t>(n));
        moved = true;
      } else {
        const int e = ssl.get_error(st.conn, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          st.broken = st.tls_eof = true;
          st.up.data.clear();
          st.up.off = 0;
        }
        write_wants_read = e == SSL_ERROR_WANT_READ;
      }
    }
    if (st.up.empty() && st.plain_eof && !st.sent_close && !st.broken) {
      ssl.shutdown(st.conn);  // close_notify: the local side's end of stream
      st.sent_close = true;
    }
    // Proxy -> local side.
    const bool may_read = !hold_down || st.heard;
    if (may_read && !st.tls_eof && st.down.size() < kMaxPending) {
      const int n = ssl.read(st.conn, buf, sizeof buf);
      if (n > 0) {
        st.down.data.insert(st.down.data.end(), buf, buf + n);
        moved = true;
      } else {
        const int e = ssl.get_error(st.conn, n);
        if (e == SSL_ERROR_ZERO_RETURN) {
          st.tls_eof = true;
          moved = true;
        } else if (e == SSL_ERROR_WANT_WRITE) {
          read_wants_write = true;
        } else if (e != SSL_ERROR_WANT_READ) {
          st.broken = st.tls_eof = true;
          moved = true;
        }
      }
    }
    if (!st.down.empty()) {
      const ssize_t n = send(plain, st.down.data.data() + st.down.off, st.down.size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        st.down.consumed(static_cast<std::size_t>(n));
        moved = true;
      } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return TlsStop::broken;
      }
    }
    // (While the dial is under way, a hand-over may still come: then the program gets what
    // was received, and the reset.)
    if (st.down.empty() && st.broken && control < 0) {
      linger l{1, 0};  // a reset, not a FIN: the local side sees ECONNRESET
      setsockopt(plain, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      return TlsStop::broken;
    }
    if (st.down.empty() && st.tls_eof) shutdown(plain, SHUT_WR);
    if (!st.plain_eof && !st.broken && st.up.size() < kMaxPending) {
      const ssize_t n = recv(plain, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        st.up.data.insert(st.up.data.end(), buf, buf + n);
        st.heard = true;
        moved = true;
      } else if (n == 0) {
        st.plain_eof = true;
        moved = true;
        // The dial ended before it said anything (it failed, or its process died): nothing
        // will ever be carried here.
        if (hold_down && !st.heard) return TlsStop::done;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return TlsStop::broken;
      }
    }
    if (st.plain_eof && st.tls_eof && st.up.empty() && st.down.empty()) return TlsStop::done;
    if (tunnel && st.plain_eof && st.up.empty() && st.sent_close) return TlsStop::done;
    if (moved || (may_read && ssl.pending(st.conn) > 0 && st.down.size() < kMaxPending)) continue;
    pollfd p[3] = {{plain, 0, 0}, {st.fd, 0, 0}, {control, POLLIN, 0}};
    if (!st.plain_eof && !st.broken && st.up.size() < kMaxPending) p[0].events |= POLLIN;
    if (!st.down.empty()) p[0].events |= POLLOUT;
    if ((may_read && !st.tls_eof && st.down.size() < kMaxPending) || write_wants_read) {
      p[1].events |= POLLIN;
    }
    if ((!st.up.empty() || read_wants_write) && !st.broken) p[1].events |= POLLOUT;
    // A side with nothing to wait for is left out: its hang-up alone must not wake the loop.
    for (auto& q : p) {
      if (q.events == 0) q.fd = -1;
    }
    const int n = poll(p, 3, -1);
    if (n < 0 && errno != EINTR) return TlsStop::broken;
    if (n > 0 && control >= 0 && p[2].revents != 0) return TlsStop::control;
  }
}

}  // namespace socksify::relay
