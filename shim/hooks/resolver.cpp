// Name resolution. In remote-DNS mode a name the policy sends through the proxy resolves to a
// fake address from the configured ranges, and nothing asks the local resolver; connect() to
// that address sends the NAME to the proxy. localhost and *.localhost are answered here with
// loopback addresses (RFC 6761), never asked of a DNS server. Numeric hosts, AI_NUMERICHOST
// and names a `direct` domain rule matches go to the real resolver, exactly as without the
// shim. The policy (classify, Operation::resolve and ::reverse) decides which is which.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "core_names.hpp"
#include "direct_names.hpp"
#include "fake_dns.hpp"
#include "guard.hpp"
#include "hosts_file.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

// What getaddrinfo itself takes as a numeric host: IPv4 in inet_aton's forms too ("127.1",
// "0x7f.1"), IPv6, and scoped IPv6 literals.
bool is_numeric(const char* node) {
  in_addr in{};
  std::uint8_t buf[16];
  return inet_aton(node, &in) != 0 || inet_pton(AF_INET6, node, buf) == 1 ||
         std::strchr(node, '%') != nullptr;
}

// How a name is answered.
// How a name is answered: by the local resolver, with a fake address (remote DNS), with
// loopback, or with the hosts file's addresses.
enum class Way : unsigned char { local, fake, loopback, hosts };

// The hosts file's answer for `name` (core/hosts_file.hpp), read at each lookup (a few system
// calls; an edit counts at once). Only the file: never a query.
bool listed_in_hosts(const char* name, HostsAnswer& out) {
  const int fd = real().open("/etc/hosts", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = real().read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || text.size() > (1u << 20)) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  real().close(fd);
  return hosts_lookup(text, name, out);
}

// In remote-DNS mode a name the policy sends through the proxy gets a fake address, unless
// the hosts file lists it: then its listed addresses (one rule for preloaded and supervised
// programs, which read the file themselves).
Way way_for(const char* node, HostsAnswer& hosts, int* rule = nullptr) {
  if (node == nullptr || *node == '\0' || is_numeric(node)) return Way::local;
  const Runtime& rt = runtime();
  Destination d;
  d.name = node;
  const Verdict v = classify(rt.config, Operation::resolve, d);
  if (rule != nullptr) *rule = v.rule;
  if (v.action == Action::loopback) return Way::loopback;
  if (v.action == Action::proxy && rt.dns != nullptr) {
    return listed_in_hosts(node, hosts) ? Way::hosts : Way::fake;
  }
  return Way::local;
}

void remember_all(const addrinfo* list) {
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    Destination d;
    if (destination_from(ai->ai_addr, ai->ai_addrlen, d)) remember_direct(d.family, d.ip.data());
  }
}

const std::uint8_t kLoopback4[4] = {127, 0, 0, 1};
const std::uint8_t kLoopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

// One line per process when the fake-DNS table is this program's own instead of the user's
// shared one (no private runtime directory, or a file refused): names it resolves are then
// unknown to other socksified processes.
void note_private_table(const FakeDns& dns) {
  static std::atomic<bool> said{false};
  if (dns.where() != FakeDns::Where::private_ || said.exchange(true)) return;
  log_error(
      "remote DNS: %s%s%s: the names this program resolves are known to it and its "
      "children only",
      dns.why_private(), dns.path()[0] != '\0' ? " at " : "", dns.path());
}

// One log line the first time the IPv4 fake range runs out (per process).
void note_v4_exhausted(const FakeDns& dns, bool refused) {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  log_error(
      "remote DNS: all %u IPv4 fake addresses are in use (fake_net4); %s. A larger "
      "--fake-net4 gives more.",
      dns.capacity4(),
      refused ? "a lookup that accepts only IPv4 fails" : "new names get IPv6 fake addresses");
}

int service_port(const char* service, const addrinfo* hints, std::uint16_t& port) {
  port = 0;
  if (service == nullptr || *service == '\0') return 0;
  unsigned long v = 0;
  const char* end = service + std::strlen(service);
  auto [p, ec] = std::from_chars(service, end, v);
  if (ec == std::errc() && p == end && v <= 65535) {
    port = static_cast<std::uint16_t>(v);
    return 0;
  }
  if (hints != nullptr && (hints->ai_flags & AI_NUMERICSERV) != 0) return EAI_NONAME;
  const char* proto = (hints != nullptr && hints->ai_socktype == SOCK_DGRAM) ? "udp" : "tcp";
  servent se{};
  servent* found = nullptr;
  char buf[1024];
  if (getservbyname_r(service, proto, &se, buf, sizeof buf, &found) != 0 || found == nullptr) {
    return EAI_SERVICE;
  }
  port = ntohs(static_cast<std::uint16_t>(found->s_port));
  return 0;
}

// One node laid out like glibc's (addrinfo and sockaddr in one malloc block, canonname
// separately), so the real freeaddrinfo frees ours too.
addrinfo* make_node(int family, int socktype, const std::uint8_t* ip, std::uint16_t port) {
  auto* ai = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + sizeof(sockaddr_in6)));
  if (ai == nullptr) return nullptr;
  auto* sa = reinterpret_cast<sockaddr*>(ai + 1);
  ai->ai_family = family;
  ai->ai_socktype = socktype;
  ai->ai_protocol = socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
  ai->ai_addr = sa;
  if (family == AF_INET) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, ip, 4);
    std::memcpy(sa, &in, sizeof in);
    ai->ai_addrlen = sizeof in;
  } else {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(in6.sin6_addr.s6_addr, ip, 16);
    std::memcpy(sa, &in6, sizeof in6);
    ai->ai_addrlen = sizeof in6;
  }
  return ai;
}

// Appends the nodes for one address (a stream node and, unless the caller asked for one
// socket type, a datagram node). False when out of memory (`head` is then freed).
bool append_nodes(addrinfo*& head, addrinfo**& tail, int family, const std::uint8_t* ip,
                  std::uint16_t port, const addrinfo* hints) {
  const int wanted = hints != nullptr ? hints->ai_socktype : 0;
  const int types[2] = {wanted != 0 ? wanted : SOCK_STREAM, wanted != 0 ? 0 : SOCK_DGRAM};
  for (int t : types) {
    if (t == 0) continue;
    addrinfo* ai = make_node(family, t, ip, port);
    if (ai == nullptr) {
      real().freeaddrinfo(head);
      head = nullptr;
      return false;
    }
    *tail = ai;
    tail = &ai->ai_next;
  }
  return true;
}

int on_getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                   addrinfo** res) noexcept {
  const int flags = hints != nullptr ? hints->ai_flags : 0;
  const int family = hints != nullptr ? hints->ai_family : AF_UNSPEC;
  int rule = -1;
  HostsAnswer hosts;
  const Way way = (flags & AI_NUMERICHOST) != 0 ? Way::local : way_for(node, hosts, &rule);
  if (way == Way::local || (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)) {
    int r = 0;
    {
      ResolverScope scope;
      r = real().getaddrinfo(node, service, hints, res);
    }
    if (r == 0 && rule > 0) remember_all(*res);  // a direct domain rule: connects go direct too
    return r;
  }
  std::uint16_t port = 0;
  if (int e = service_port(service, hints, port); e != 0) return e;
  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  if (way == Way::loopback) {
    // IPv4 first for AF_UNSPEC: 127.0.0.1 works wherever the loopback interface does.
    if (family != AF_INET6 && !append_nodes(head, tail, AF_INET, kLoopback4, port, hints)) {
      return EAI_MEMORY;
    }
    if (family != AF_INET && !append_nodes(head, tail, AF_INET6, kLoopback6, port, hints)) {
      return EAI_MEMORY;
    }
  } else if (way == Way::hosts) {
    // The hosts file's addresses, IPv4 first, of the families asked for.
    if (family != AF_INET6) {
      for (std::size_t i = 0; i < hosts.count4; ++i) {
        if (!append_nodes(head, tail, AF_INET, hosts.v4[i].data(), port, hints)) return EAI_MEMORY;
      }
    }
    if (family != AF_INET) {
      for (std::size_t i = 0; i < hosts.count6; ++i) {
        if (!append_nodes(head, tail, AF_INET6, hosts.v6[i].data(), port, hints)) {
          return EAI_MEMORY;
        }
      }
    }
    if (head == nullptr) return EAI_NONAME;
    log_line(LogLevel::debug, "resolved %s from the hosts file", node);
  } else {
    FakeDns& dns = *runtime().dns;
    const auto fake = dns.lookup_or_add(node);
    note_private_table(dns);
    // A name SOCKS cannot carry (over 255 octets) does not exist as far as the proxy goes; it
    // must not fall back to the local resolver either.
    if (!fake) {
      if (std::strlen(node) > 255) return EAI_NONAME;
      log_error("remote DNS: the fake address table is full (%u names); %s not resolved",
                FakeDns::capacity(), node);
      return EAI_FAIL;
    }
    // AF_UNSPEC gets the IPv4 fake while the IPv4 range lasts; a caller that asks for
    // AF_INET6 only (or any caller, once the IPv4 range is used up) gets the IPv6 one.
    int fam = family == AF_INET6 ? AF_INET6 : AF_INET;
    if (fam == AF_INET && !fake->has_v4()) {
      note_v4_exhausted(dns, family == AF_INET);
      if (family == AF_INET) return EAI_FAIL;
      fam = AF_INET6;
    }
    std::uint8_t ip[16];
    if (fam == AF_INET) {
      dns.address4(*fake, ip);
    } else {
      dns.address6(*fake, ip);
    }
    if (!append_nodes(head, tail, fam, ip, port, hints)) return EAI_MEMORY;
    log_line(LogLevel::debug, "resolved %s to a fake address (remote DNS)", node);
  }
  if ((flags & AI_CANONNAME) != 0 && head != nullptr) head->ai_canonname = strdup(node);
  *res = head;
  return 0;
}

// --- gethostbyname family ---

struct HostBuffer {
  char name[256];
  char* aliases[1];
  char* addrs[2];
  alignas(8) std::uint8_t addr[16];
};

// Makes `h` the one-address hostent held in `b` (name and address already filled in).
void point_hostent(hostent* h, HostBuffer* b, int af) {
  b->aliases[0] = nullptr;
  b->addrs[0] = reinterpret_cast<char*>(b->addr);
  b->addrs[1] = nullptr;
  h->h_name = b->name;
  h->h_aliases = b->aliases;
  h->h_addrtype = af;
  h->h_length = af == AF_INET ? 4 : 16;
  h->h_addr_list = b->addrs;
}

// Fills `h` with the one address of `af` that `name` gets here (`way`: fake, loopback or
// the hosts file's first), using storage `b`. False with `herr` set when there is none.
bool fill_hostent(const char* name, Way way, const HostsAnswer& hosts, int af, hostent* h,
                  HostBuffer* b, int& herr) {
  herr = HOST_NOT_FOUND;
  if (af != AF_INET && af != AF_INET6) return false;
  if (way == Way::loopback) {
    std::memcpy(b->addr, af == AF_INET ? kLoopback4 : kLoopback6, af == AF_INET ? 4 : 16);
  } else if (way == Way::hosts) {
    if (af == AF_INET ? hosts.count4 == 0 : hosts.count6 == 0) return false;
    if (af == AF_INET) {
      std::memcpy(b->addr, hosts.v4[0].data(), 4);
    } else {
      std::memcpy(b->addr, hosts.v6[0].data(), 16);
    }
  } else {
    FakeDns& dns = *runtime().dns;
    const auto fake = dns.lookup_or_add(name);
    note_private_table(dns);
    if (!fake) {
      if (std::strlen(name) <= 255) herr = NO_RECOVERY;  // the table is full
      return false;
    }
    if (af == AF_INET && !fake->has_v4()) {
      note_v4_exhausted(dns, true);
      herr = NO_RECOVERY;
      return false;
    }
    if (af == AF_INET) {
      dns.address4(*fake, b->addr);
    } else {
      dns.address6(*fake, b->addr);
    }
  }
  std::strncpy(b->name, name, sizeof b->name - 1);
  b->name[sizeof b->name - 1] = '\0';
  point_hostent(h, b, af);
  return true;
}

thread_local hostent t_host __attribute__((tls_model("initial-exec")));
thread_local HostBuffer t_host_buf __attribute__((tls_model("initial-exec")));

// `handled` says the name is answered here: then the answer (or the failure, with h_errno
// set) is final, and the local resolver must not be asked.
hostent* static_hostent(const char* name, int af, bool& handled) {
  HostsAnswer hosts;
  const Way way = way_for(name, hosts);
  handled = way != Way::local;
  if (!handled) return nullptr;
  int herr = 0;
  if (!fill_hostent(name, way, hosts, af, &t_host, &t_host_buf, herr)) {
    h_errno = herr;
    return nullptr;
  }
  return &t_host;
}

// The caller's buffer of a *_r function, aligned for a HostBuffer; null when it is too small.
HostBuffer* host_buffer_in(char* buf, size_t buflen) {
  const auto mis = reinterpret_cast<std::uintptr_t>(buf) % alignof(HostBuffer);
  const std::size_t pad = mis == 0 ? 0 : alignof(HostBuffer) - mis;
  return buflen < pad + sizeof(HostBuffer) ? nullptr : reinterpret_cast<HostBuffer*>(buf + pad);
}

// How the *_r functions report, as glibc's do: the result (null if none), h_errno, and the
// return value (0 also for "not found"; ERANGE for a buffer too small).
int reentrant_result(hostent* found, hostent** result, int* h_errnop, int herr, int rc) {
  *result = found;
  if (h_errnop != nullptr) *h_errnop = herr;
  return rc;
}

int reentrant_hostent(const char* name, int af, hostent* ret, char* buf, size_t buflen,
                      hostent** result, int* h_errnop, bool& handled) {
  HostsAnswer hosts;
  const Way way = way_for(name, hosts);
  handled = way != Way::local;
  if (!handled) return 0;
  HostBuffer* b = host_buffer_in(buf, buflen);
  if (b == nullptr) return reentrant_result(nullptr, result, h_errnop, NETDB_INTERNAL, ERANGE);
  int herr = 0;
  if (!fill_hostent(name, way, hosts, af, ret, b, herr)) {
    return reentrant_result(nullptr, result, h_errnop, herr, 0);
  }
  return reentrant_result(ret, result, h_errnop, 0, 0);
}

// A reverse lookup of an address: the policy says whether the local resolver may be asked.
// In remote-DNS mode, asking it about an address the policy sends through the proxy would
// tell the local DNS where the program is going, so only addresses routed direct (loopback,
// direct rules) are looked up; the others get no name.
bool may_reverse_locally(const Runtime& rt, const Destination& d) {
  Context ctx;
  ctx.fake = rt.dns != nullptr && rt.dns->in_range(d.family, d.ip.data());
  return classify(rt.config, Operation::reverse, d, ctx).action == Action::direct;
}

// The fake name behind `addr`, copied into `b` as a one-address hostent in `h`.
bool fake_hostent_for(const Runtime& rt, const void* addr, socklen_t len, int type, hostent* h,
                      HostBuffer* b) {
  if (rt.dns == nullptr || !((type == AF_INET && len == 4) || (type == AF_INET6 && len == 16))) {
    return false;
  }
  if (!rt.dns->name_of(type, static_cast<const std::uint8_t*>(addr), b->name, sizeof b->name)) {
    return false;
  }
  std::memcpy(b->addr, addr, static_cast<std::size_t>(len));
  point_hostent(h, b, type);
  return true;
}

// True when a reverse lookup of `addr` must not reach the local resolver.
bool reverse_blocked(const Runtime& rt, const void* addr, socklen_t len, int type) {
  Destination d;
  d.family = type;
  if ((type != AF_INET || len != 4) && (type != AF_INET6 || len != 16)) return false;
  std::memcpy(d.ip.data(), addr, static_cast<std::size_t>(len));
  if (!may_reverse_locally(rt, d)) {
    log_line(LogLevel::debug, "reverse lookup of a proxied address answered locally: no name");
    return true;
  }
  return false;
}

// getaddrinfo_a: glibc runs its lookups on its own threads with internal calls that bypass
// the getaddrinfo hook, so in remote-DNS mode a list holding a name we answer is answered here,
// synchronously (names we do not answer are looked up with the real getaddrinfo in the same
// pass). The requests are complete when it returns; gai_error, gai_suspend and gai_cancel
// see them as done. A GAI_NOWAIT notification is delivered as glibc delivers it: a signal, or
// the function on a new thread.
void* notify_thread(void* arg) {
  auto* ev = static_cast<sigevent*>(arg);
  ev->sigev_notify_function(ev->sigev_value);
  delete ev;
  return nullptr;
}

int answer_gai_list(int mode, gaicb* list[], int nitems, sigevent* sevp) {
  for (int i = 0; i < nitems; ++i) {
    gaicb* r = list[i];
    if (r == nullptr) continue;
    r->ar_result = nullptr;
    r->__return = on_getaddrinfo(r->ar_name, r->ar_service, r->ar_request, &r->ar_result);
  }
  if (mode != GAI_NOWAIT || sevp == nullptr) return 0;
  if (sevp->sigev_notify == SIGEV_SIGNAL) {
    sigqueue(getpid(), sevp->sigev_signo, sevp->sigev_value);
  } else if (sevp->sigev_notify == SIGEV_THREAD && sevp->sigev_notify_function != nullptr) {
    auto* copy = new (std::nothrow) sigevent(*sevp);
    if (copy == nullptr) return EAI_MEMORY;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    const int e = pthread_create(
        &t, sevp->sigev_notify_attributes != nullptr ? sevp->sigev_notify_attributes : &attr,
        notify_thread, copy);
    pthread_attr_destroy(&attr);
    if (e != 0) {
      delete copy;
      return EAI_SYSTEM;
    }
  }
  return 0;
}

}  // namespace
}  // namespace socksify::shim

namespace sh = socksify::shim;

extern "C" {

SOCKSIFY_EXPORT int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                                addrinfo** res) {
  if (sh::inside()) return sh::real().getaddrinfo(node, service, hints, res);
  sh::Guard guard;
  return sh::on_getaddrinfo(node, service, hints, res);
}

SOCKSIFY_EXPORT int getaddrinfo_a(int mode, gaicb* list[], int nitems, sigevent* sevp) {
  if (!sh::inside() && list != nullptr && nitems > 0) {
    sh::Guard guard;
    for (int i = 0; i < nitems; ++i) {
      sh::HostsAnswer hosts;
      if (list[i] != nullptr && sh::way_for(list[i]->ar_name, hosts) != sh::Way::local) {
        return sh::answer_gai_list(mode, list, nitems, sevp);
      }
    }
  }
  if (sh::real().getaddrinfo_a == nullptr) return EAI_SYSTEM;
  return sh::real().getaddrinfo_a(mode, list, nitems, sevp);
}

SOCKSIFY_EXPORT void freeaddrinfo(addrinfo* ai) {
  sh::real().freeaddrinfo(ai);
}

SOCKSIFY_EXPORT hostent* gethostbyname(const char* name) {
  if (sh::inside()) return sh::real().gethostbyname(name);
  sh::ResolverScope scope;
  bool handled = false;
  hostent* h = sh::static_hostent(name, AF_INET, handled);
  return handled ? h : sh::real().gethostbyname(name);
}

SOCKSIFY_EXPORT hostent* gethostbyname2(const char* name, int af) {
  if (sh::inside()) return sh::real().gethostbyname2(name, af);
  sh::ResolverScope scope;
  bool handled = false;
  hostent* h = sh::static_hostent(name, af, handled);
  return handled ? h : sh::real().gethostbyname2(name, af);
}

SOCKSIFY_EXPORT int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen,
                                    hostent** result, int* h_errnop) {
  if (sh::inside()) return sh::real().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  sh::ResolverScope scope;
  bool handled = false;
  const int r = sh::reentrant_hostent(name, AF_INET, ret, buf, buflen, result, h_errnop, handled);
  return handled ? r : sh::real().gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
}

SOCKSIFY_EXPORT int gethostbyname2_r(const char* name, int af, hostent* ret, char* buf,
                                     size_t buflen, hostent** result, int* h_errnop) {
  if (sh::inside()) {
    return sh::real().gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
  }
  sh::ResolverScope scope;
  bool handled = false;
  const int r = sh::reentrant_hostent(name, af, ret, buf, buflen, result, h_errnop, handled);
  return handled ? r : sh::real().gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
}

SOCKSIFY_EXPORT hostent* gethostbyaddr(const void* addr, socklen_t len, int type) {
  if (sh::inside() || addr == nullptr) return sh::real().gethostbyaddr(addr, len, type);
  sh::ResolverScope scope;
  const sh::Runtime& rt = sh::runtime();
  if (sh::fake_hostent_for(rt, addr, len, type, &sh::t_host, &sh::t_host_buf)) {
    return &sh::t_host;
  }
  if (sh::reverse_blocked(rt, addr, len, type)) {
    h_errno = HOST_NOT_FOUND;
    return nullptr;
  }
  return sh::real().gethostbyaddr(addr, len, type);
}

SOCKSIFY_EXPORT int gethostbyaddr_r(const void* addr, socklen_t len, int type, hostent* ret,
                                    char* buf, size_t buflen, hostent** result, int* h_errnop) {
  if (sh::inside() || addr == nullptr) {
    return sh::real().gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
  }
  sh::ResolverScope scope;
  const sh::Runtime& rt = sh::runtime();
  // The caller's buffer is scratch space for the answer, as for the real function.
  sh::HostBuffer* b = sh::host_buffer_in(buf, buflen);
  hostent scratch{};
  sh::HostBuffer small;
  if (sh::fake_hostent_for(rt, addr, len, type, b != nullptr ? ret : &scratch,
                           b != nullptr ? b : &small)) {
    return b != nullptr ? sh::reentrant_result(ret, result, h_errnop, 0, 0)
                        : sh::reentrant_result(nullptr, result, h_errnop, NETDB_INTERNAL, ERANGE);
  }
  if (sh::reverse_blocked(rt, addr, len, type)) {
    return sh::reentrant_result(nullptr, result, h_errnop, HOST_NOT_FOUND, 0);
  }
  return sh::real().gethostbyaddr_r(addr, len, type, ret, buf, buflen, result, h_errnop);
}

SOCKSIFY_EXPORT int getnameinfo(const sockaddr* sa, socklen_t salen, char* host, socklen_t hostlen,
                                char* serv, socklen_t servlen, int flags) {
  if (sh::inside() || host == nullptr || hostlen == 0 || (flags & NI_NUMERICHOST) != 0) {
    return sh::real().getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
  }
  sh::ResolverScope scope;
  const sh::Runtime& rt = sh::runtime();
  sh::Destination d;
  char name[256];
  if (sh::destination_from(sa, salen, d)) {
    if (rt.dns != nullptr && rt.dns->name_of(d.family, d.ip.data(), name, sizeof name)) {
      const std::size_t n = std::strlen(name);
      if (n >= hostlen) return EAI_OVERFLOW;
      std::memcpy(host, name, n + 1);
      if (serv != nullptr && servlen > 0) {
        return sh::real().getnameinfo(sa, salen, nullptr, 0, serv, servlen, flags);
      }
      return 0;
    }
    if (!sh::may_reverse_locally(rt, d)) {
      // The numeric form, as NI_NUMERICHOST gives, or no name at all when one is required.
      if ((flags & NI_NAMEREQD) != 0) return EAI_NONAME;
      return sh::real().getnameinfo(sa, salen, host, hostlen, serv, servlen,
                                    flags | NI_NUMERICHOST);
    }
  }
  return sh::real().getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
}

}  // extern "C"
