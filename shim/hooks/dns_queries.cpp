// DNS queries made with the resolver library (res_query and relatives: SRV, MX, TXT lookups).
// libc sends them with its own internal socket calls, which our sendto/connect hooks never see,
// so in remote-DNS mode they are refused here: SOCKS5 has no way to carry them, and a local
// query would tell the local DNS where the program is going. Names that a `direct` domain rule
// matches are still looked up locally. The __res_* aliases are what binaries built against
// older glibc headers call.
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>

#include <cerrno>
#include <cstring>

#include "core_names.hpp"
#include "guard.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

// True when the local resolver may be asked about `name` (null: the question was unreadable).
bool local_query_allowed(const char* name) {
  const Runtime& rt = runtime();
  Destination d;
  d.name = name != nullptr ? name : "";
  if (name == nullptr && rt.config.remote_dns) return false;
  return classify(rt.config, Operation::dns_query, d).action == Action::direct;
}

// "name.domain" (or just name) into `out`.
const char* joined(const char* name, const char* domain, char* out, std::size_t len) {
  if (name == nullptr) return nullptr;
  if (domain == nullptr || *domain == '\0') return name;
  const std::size_t n = std::strlen(name), d = std::strlen(domain);
  if (n + 1 + d + 1 > len) return nullptr;
  std::memcpy(out, name, n);
  out[n] = '.';
  std::memcpy(out + n + 1, domain, d + 1);
  return out;
}

// The question name of a DNS message, in dotted form; false if the message has none we can
// read (compression is not used in questions a client builds).
bool question_name(const unsigned char* msg, int len, char* out, std::size_t outlen) {
  if (msg == nullptr || len < 12 || ((msg[4] << 8) | msg[5]) == 0) return false;
  std::size_t off = 12, o = 0;
  const auto end = static_cast<std::size_t>(len);
  while (off < end) {
    const std::size_t l = msg[off++];
    if (l == 0) {
      out[o] = '\0';
      return true;
    }
    if ((l & 0xC0) != 0 || off + l > end || o + l + 2 > outlen) return false;
    if (o > 0) out[o++] = '.';
    std::memcpy(out + o, msg + off, l);
    o += l;
    off += l;
  }
  return false;
}

int missing(res_state statp) {
  if (statp != nullptr) statp->res_h_errno = NO_RECOVERY;
  h_errno = NO_RECOVERY;
  errno = ENOSYS;
  return -1;
}

int refuse(const char* what, const char* name, res_state statp) {
  log_line(LogLevel::info, "refused %s for %s: remote DNS (a local DNS query would leak)", what,
           name != nullptr ? name : "(unreadable question)");
  if (statp != nullptr) statp->res_h_errno = NO_RECOVERY;
  h_errno = NO_RECOVERY;
  errno = ECONNREFUSED;
  return -1;
}

// One hook: refuse a query about `name` that must not reach the local resolver, else pass it
// to the real function (which glibc before 2.34 may lack). `name` is the queried name, or null
// when it could not be read.
template <class Real, class... Args>
int query_or_refuse(const char* what, const char* name, res_state statp, Real real_fn,
                    Args... args) noexcept {
  if (inside()) return real_fn != nullptr ? real_fn(args...) : missing(statp);
  ResolverScope scope;
  if (!local_query_allowed(name)) return refuse(what, name, statp);
  if (real_fn == nullptr) return missing(statp);
  return real_fn(args...);
}

}  // namespace
}  // namespace socksify::shim

namespace socksify::shim {
namespace {

// The hooks' work; the __res_* names call these, never another hook by name.
int query(const char* dname, int cls, int type, unsigned char* answer, int anslen) {
  return query_or_refuse("res_query", dname, nullptr, real().res_query, dname, cls, type, answer,
                         anslen);
}

int search(const char* dname, int cls, int type, unsigned char* answer, int anslen) {
  return query_or_refuse("res_search", dname, nullptr, real().res_search, dname, cls, type, answer,
                         anslen);
}

int querydomain(const char* name, const char* domain, int cls, int type, unsigned char* answer,
                int anslen) {
  char full[2 * NS_MAXDNAME];
  return query_or_refuse("res_querydomain", joined(name, domain, full, sizeof full), nullptr,
                         real().res_querydomain, name, domain, cls, type, answer, anslen);
}

int send_query(const unsigned char* msg, int msglen, unsigned char* answer, int anslen) {
  char q[NS_MAXDNAME];
  return query_or_refuse("res_send", question_name(msg, msglen, q, sizeof q) ? q : nullptr, nullptr,
                         real().res_send, msg, msglen, answer, anslen);
}

int nquery(res_state statp, const char* dname, int cls, int type, unsigned char* answer,
           int anslen) {
  return query_or_refuse("res_nquery", dname, statp, real().res_nquery, statp, dname, cls, type,
                         answer, anslen);
}

int nsearch(res_state statp, const char* dname, int cls, int type, unsigned char* answer,
            int anslen) {
  return query_or_refuse("res_nsearch", dname, statp, real().res_nsearch, statp, dname, cls, type,
                         answer, anslen);
}

int nquerydomain(res_state statp, const char* name, const char* domain, int cls, int type,
                 unsigned char* answer, int anslen) {
  char full[2 * NS_MAXDNAME];
  return query_or_refuse("res_nquerydomain", joined(name, domain, full, sizeof full), statp,
                         real().res_nquerydomain, statp, name, domain, cls, type, answer, anslen);
}

int nsend(res_state statp, const unsigned char* msg, int msglen, unsigned char* answer,
          int anslen) {
  char q[NS_MAXDNAME];
  return query_or_refuse("res_nsend", question_name(msg, msglen, q, sizeof q) ? q : nullptr, statp,
                         real().res_nsend, statp, msg, msglen, answer, anslen);
}

}  // namespace
}  // namespace socksify::shim

namespace sh = socksify::shim;

extern "C" {

SOCKSIFY_EXPORT int res_query(const char* d, int c, int t, unsigned char* a, int l) noexcept {
  return sh::query(d, c, t, a, l);
}
SOCKSIFY_EXPORT int res_search(const char* d, int c, int t, unsigned char* a, int l) noexcept {
  return sh::search(d, c, t, a, l);
}
SOCKSIFY_EXPORT int res_querydomain(const char* n, const char* d, int c, int t, unsigned char* a,
                                    int l) noexcept {
  return sh::querydomain(n, d, c, t, a, l);
}
SOCKSIFY_EXPORT int res_send(const unsigned char* m, int ml, unsigned char* a, int l) noexcept {
  return sh::send_query(m, ml, a, l);
}
SOCKSIFY_EXPORT int res_nquery(res_state s, const char* d, int c, int t, unsigned char* a,
                               int l) noexcept {
  return sh::nquery(s, d, c, t, a, l);
}
SOCKSIFY_EXPORT int res_nsearch(res_state s, const char* d, int c, int t, unsigned char* a,
                                int l) noexcept {
  return sh::nsearch(s, d, c, t, a, l);
}
SOCKSIFY_EXPORT int res_nquerydomain(res_state s, const char* n, const char* d, int c, int t,
                                     unsigned char* a, int l) noexcept {
  return sh::nquerydomain(s, n, d, c, t, a, l);
}
SOCKSIFY_EXPORT int res_nsend(res_state s, const unsigned char* m, int ml, unsigned char* a,
                              int l) noexcept {
  return sh::nsend(s, m, ml, a, l);
}

// The names older glibc headers mapped the functions to (#define res_query __res_query): the
// same functions under a second name.
SOCKSIFY_EXPORT int __res_query(const char*, int, int, unsigned char*, int) noexcept
    __attribute__((alias("res_query")));
SOCKSIFY_EXPORT int __res_search(const char*, int, int, unsigned char*, int) noexcept
    __attribute__((alias("res_search")));
SOCKSIFY_EXPORT int __res_querydomain(const char*, const char*, int, int, unsigned char*,
                                      int) noexcept __attribute__((alias("res_querydomain")));
SOCKSIFY_EXPORT int __res_send(const unsigned char*, int, unsigned char*, int) noexcept
    __attribute__((alias("res_send")));
SOCKSIFY_EXPORT int __res_nquery(res_state, const char*, int, int, unsigned char*, int) noexcept
    __attribute__((alias("res_nquery")));
SOCKSIFY_EXPORT int __res_nsearch(res_state, const char*, int, int, unsigned char*, int) noexcept
    __attribute__((alias("res_nsearch")));
SOCKSIFY_EXPORT int __res_nquerydomain(res_state, const char*, const char*, int, int,
                                       unsigned char*, int) noexcept
    __attribute__((alias("res_nquerydomain")));
SOCKSIFY_EXPORT int __res_nsend(res_state, const unsigned char*, int, unsigned char*, int) noexcept
    __attribute__((alias("res_nsend")));

}  // extern "C"
