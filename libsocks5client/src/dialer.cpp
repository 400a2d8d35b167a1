#include "socks5/dialer.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "socks5/error.hpp"

namespace socks5 {
namespace {

using Clock = std::chrono::steady_clock;

// What a wait's `until` stands for, so that on_timeout() knows what passed.
constexpr int kTimerDeadline = 0;  // the dial's deadline
constexpr int kTimerAttempt = 1;   // this attempt's share of it (TCP connect, failover)
constexpr int kTimerStall = 2;     // silence after the method selection (pipelining stall)

// What was learned about proxies and pipelined handshakes. Process-wide, lock-free (so fork()
// can never inherit a held lock), fixed size, trivially initialised: per slot a fingerprint of
// host and port with bit 0 saying whether the proxy drops pipelined octets; 0 = empty.
std::array<std::atomic<std::uint64_t>, 32> g_pipelining{};
std::atomic<std::uint32_t> g_pipelining_next{0};

std::uint64_t fingerprint(const ProxyUri& proxy) {
  // FNV-1a over the host text and the port; bit 1 set so that it is never 0 with bit 0 clear.
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 1099511628211ULL; };
  for (char c : proxy.host) mix(static_cast<std::uint8_t>(c));
  mix(static_cast<std::uint8_t>(proxy.port >> 8));
  mix(static_cast<std::uint8_t>(proxy.port & 0xFF));
  return (h | 2) & ~std::uint64_t{1};
}

// connect() errors that are the caller's (a socket of the wrong family, a bad fd, no memory):
// no proxy is at fault, so none is put in cool-down and no other is tried.
bool local_error(int e) {
  switch (e) {
    case EINVAL:
    case EAFNOSUPPORT:
    case EBADF:
    case ENOTSOCK:
    case EISCONN:
    case EFAULT:
    case EPROTOTYPE:
    case EOPNOTSUPP:
    case ENOBUFS:
    case ENOMEM:
    case EMFILE:
    case ENFILE: return true;
    default: return false;
  }
}

socklen_t length_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return sizeof(sockaddr_in);
  if (ss.ss_family == AF_INET6) return sizeof(sockaddr_in6);
  if (ss.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) +
                                  strnlen(un->sun_path, sizeof un->sun_path) + 1);
  }
  return 0;
}

}  // namespace

PipeliningVerdict pipelining_verdict(const ProxyUri& proxy) noexcept {
  // Nothing learned (the usual case for a process that has not dialed yet): no need to hash.
  if (g_pipelining_next.load(std::memory_order_relaxed) == 0) return PipeliningVerdict::unknown;
  const std::uint64_t f = fingerprint(proxy);
  for (const auto& slot : g_pipelining) {
    const std::uint64_t v = slot.load(std::memory_order_relaxed);
    if ((v & ~std::uint64_t{1}) == f) {
      return (v & 1) != 0 ? PipeliningVerdict::drops : PipeliningVerdict::works;
    }
  }
  return PipeliningVerdict::unknown;
}

void remember_pipelining(const ProxyUri& proxy, PipeliningVerdict verdict) noexcept {
  if (verdict == PipeliningVerdict::unknown) return;
  const std::uint64_t f = fingerprint(proxy);
  const std::uint64_t v = f | (verdict == PipeliningVerdict::drops ? 1 : 0);
  for (auto& slot : g_pipelining) {
    if ((slot.load(std::memory_order_relaxed) & ~std::uint64_t{1}) == f) {
      slot.store(v, std::memory_order_relaxed);
      return;
    }
  }
  const std::uint32_t i = g_pipelining_next.fetch_add(1, std::memory_order_relaxed);
  g_pipelining[i % g_pipelining.size()].store(v, std::memory_order_relaxed);
}

bool pipelining_known_bad(const ProxyUri& proxy) noexcept {
  return pipelining_verdict(proxy) == PipeliningVerdict::drops;
}

void reset_pipelining_memory() noexcept {
  for (auto& slot : g_pipelining) slot.store(0, std::memory_order_relaxed);
  g_pipelining_next.store(0, std::memory_order_relaxed);
}

Dial::Dial(const DialPlan& plan, DialSocket socket, DialRequest request, Deadline deadline)
    : plan_(plan),
      sys_(plan.syscalls != nullptr ? plan.syscalls : &Syscalls::libc()),
      socket_(std::move(socket)),
      request_(std::move(request)),
      deadline_(deadline),
      fd_(socket_.fd),
      owns_fd_(socket_.fd < 0 || socket_.owned) {}

Dial::Dial(Dial&&) noexcept = default;
Dial& Dial::operator=(Dial&&) noexcept = default;

Dial::~Dial() {
  if (owns_fd_ && fd_ >= 0) sys().close(fd_);
  if (control_ >= 0) sys().close(control_);
}

const Address& Dial::endpoint() const {
  if (tcp_connected_) {
    if (auto a = Address::from_sockaddr(address(), addr_len_)) endpoint_ = *a;
  } else if (socket_.connected) {
    endpoint_ = socket_.endpoint;
  }
  return endpoint_;
}

const sockaddr* Dial::address() const noexcept {
  return reinterpret_cast<const sockaddr*>(&addr_);
}

int Dial::release_fd() noexcept {
  if (!owns_fd_) return -1;
  return std::exchange(fd_, -1);
}

std::size_t Dial::hops() const noexcept {
  return plan_.chain == ChainMode::strict ? plan_.proxies.size() : 1;
}

Dial::Step Dial::start() {
  started_ = true;
  if (plan_.measure) t_connect_ = Clock::now();
  if (plan_.proxies.empty()) return fail(Errc::invalid_argument, DialStage::resolve);
  if (socket_.connected) {
    // Adopted: already connected to the first proxy.
    t_handshake_ = t_connect_;
    state_ = after_reaching(0);
    return run();
  }
  // Failover: healthy proxies first, in order, then those cooling down; each at most once.
  // A strict chain always starts at its first hop.
  const std::size_t n = plan_.chain == ChainMode::strict ? 1 : plan_.proxies.size();
  if (n > order_inline_.size()) order_more_.resize(n);
  std::uint32_t* order = n > order_inline_.size() ? order_more_.data() : order_inline_.data();
  // Each proxy's health is asked once: healthy ones go first, in order; the cooling ones are
  // kept at the back, in order too.
  std::size_t back = n;
  for (std::size_t i = 0; i < n; ++i) {
    const bool cooling =
        plan_.health != nullptr && plan_.chain == ChainMode::failover && plan_.health->cooling(i);
    if (cooling) {
      order[--back] = static_cast<std::uint32_t>(i);
    } else {
      order[order_count_++] = static_cast<std::uint32_t>(i);
    }
  }
  std::reverse(order + back, order + n);
  order_count_ = n;
  return run();
}

Dial::Step Dial::on_connect(int err) {
  if (state_ != State::address) return step_;
  if (err == 0) {
    connected();
  } else if (addr_.ss_family == AF_UNIX) {
    // A blocking Unix connect ended without a connection (EAGAIN: its SO_SNDTIMEO passed
    // with no room in the listener's backlog).
    tcp_failed(err == EAGAIN ? ETIMEDOUT : err);
  } else if (err == EINPROGRESS || err == EALREADY || err == EINTR || err == EAGAIN) {
    state_ = State::connecting;
    woke_ = false;
  } else {
    tcp_failed(err);
  }
  return run();
}

Dial::Step Dial::on_ready(short) {
  woke_ = true;
  return run();
}

Dial::Step Dial::on_timeout() {
  const bool deadline_passed = deadline_.expired() || timer_ == kTimerDeadline;
  if (state_ == State::connecting) {
    if (deadline_passed) {
      proxy_failed(current_, DialStage::tcp_connect, Errc::timed_out);
      if (state_ != State::failed) fail(Errc::timed_out, DialStage::tcp_connect);
    } else {
      tcp_failed(ETIMEDOUT);  // this attempt's share is used up: the next address or proxy
    }
  } else if (state_ == State::layer_wait) {
    proxy_failed(current_, DialStage::transport, Errc::timed_out);
  } else if (state_ == State::handshake) {
    if (deadline_passed || timer_ != kTimerStall) {
      hop_failed(handshake_timeout());
    } else {
      hop_failed(make_error_code(Errc::pipelining_stalled));
    }
  }
  return run();
}

std::error_code Dial::handshake_timeout() const noexcept {
  // The hop says what silence means now (no answer at all: not that protocol, or wedged).
  return make_error_code(hop_state_ ? hop_state_->silence_error() : Errc::timed_out);
}

Dial::Step Dial::on_error(int err) {
  return fail(std::error_code(err, std::generic_category()), stage_);
}

Dial::Step Dial::wait_for(short events, Clock::time_point until, int timer, Clock::time_point now) {
  timer_ = timer;
  int ms = 0;
  if (until > now) {
    // Rounded up, so that a poll that times out is past `until`.
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(until - now).count();
    const auto left = (ns + 999999) / 1000000;
    ms = left > 0x7fffffff ? 0x7fffffff : static_cast<int>(left);
  }
  step_ = Step{Next::wait, events, until, ms};
  return step_;
}

void Dial::add_address(const sockaddr_storage& ss) {
  if (addr_count_ == 0) {
    addr_inline_ = ss;
  } else {
    if (addr_more_.empty()) addr_more_.push_back(addr_inline_);
    addr_more_.push_back(ss);
  }
  ++addr_count_;
}

const sockaddr_storage& Dial::address_at(std::size_t i) const noexcept {
  return addr_more_.empty() ? addr_inline_ : addr_more_[i];
}

bool Dial::resolve(std::size_t i) {
  addr_more_.clear();
  addr_count_ = 0;
  addr_pos_ = 0;
  const ProxyUri& p = plan_.proxies[i];
  if (!p.unix_path.empty()) {
    // A Unix-domain socket: only a socket of the dial's own can reach it (the caller's is an
    // internet socket).
    if (!owns_fd_) {
      last_error_ = Errc::no_proxy_address;
      return false;
    }
    sockaddr_storage ss{};
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    un->sun_family = AF_UNIX;
    if (p.unix_path.size() >= sizeof un->sun_path) {
      last_error_ = Errc::invalid_uri;
      return false;
    }
    std::memcpy(un->sun_path, p.unix_path.data(), p.unix_path.size());
    add_address(ss);
    return true;
  }
  if (i < plan_.numeric.size() && plan_.numeric[i].ss_family != AF_UNSPEC) {
    // The usual case: parsed once, fitted straight into place.
    if (fit_family(reinterpret_cast<const sockaddr*>(&plan_.numeric[i]), socket_.family,
                   addr_inline_)) {
      addr_count_ = 1;
    }
  } else {
    // A host name names the proxy: it is resolved here, locally.
    addrinfo hints{};
    hints.ai_family = socket_.family == AF_INET ? AF_INET : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    const std::string port = std::to_string(p.port);
    addrinfo* list = nullptr;
    if (sys().getaddrinfo(p.host.c_str(), port.c_str(), &hints, &list) != 0 || list == nullptr) {
      // AI_ADDRCONFIG hides ::1 on hosts without a global IPv6 address; retry without it.
      hints.ai_flags = AI_NUMERICSERV;
      list = nullptr;
      if (sys().getaddrinfo(p.host.c_str(), port.c_str(), &hints, &list) != 0) list = nullptr;
    }
    if (list == nullptr) {
      last_error_ = Errc::name_resolution_failed;
      return false;
    }
    for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      sockaddr_storage ss{};
      if (fit_family(ai->ai_addr, socket_.family, ss)) add_address(ss);
    }
    sys().freeaddrinfo(list);
  }
  if (addr_count_ == 0) {
    last_error_ = Errc::no_proxy_address;
    return false;
  }
  return true;
}

void Dial::connected() {
  // After a pipelining stall the handshake's time runs on from the first connection's.
  if (plan_.measure && !stats_.fell_back) {
    t_handshake_ = Clock::now();
    stats_.connect_time = t_handshake_ - t_connect_;
  }
  tcp_connected_ = true;
  hop_ = 0;
  if (plan_.chain == ChainMode::strict) current_ = 0;
  state_ = after_reaching(current_);
}

Dial::State Dial::after_reaching(std::size_t i) const noexcept {
  // Reaching an https proxy means reaching it through TLS (`check` without a destination
  // too); then its hop, if one is asked for.
  if (i < plan_.proxies.size() && needs_transport(plan_.proxies[i])) return State::transport;
  return request_.tcp_only ? State::done : State::hop;
}

void Dial::tcp_failed(int err) {
  if (local_error(err)) {
    caller_fault_ = true;
    fail(std::error_code(err, std::generic_category()), DialStage::tcp_connect);
    return;
  }
  last_error_ = std::error_code(err, std::generic_category());
  stage_ = DialStage::tcp_connect;
  reset_socket();
  state_ = State::address;  // the proxy's next address; proxy_failed() once none is left
}

void Dial::proxy_failed(std::size_t i, DialStage stage, const std::error_code& ec) {
  last_error_ = ec;
  stage_ = stage;
  const bool failover = plan_.chain == ChainMode::failover;
  const bool next = failover && next_ < order_count_ && !deadline_.expired();
  if (failover && plan_.health != nullptr) plan_.health->failed(i);
  if (plan_.observer != nullptr) plan_.observer->proxy_failed(i, stage, ec, next);
  if (next) {
    reset_socket();
    state_ = State::pick;
  } else {
    fail(ec, stage);
  }
}

bool Dial::can_reconnect() const noexcept {
  // Our own sockets can be replaced; the caller's socket can be reconnected in place if this
  // dial connected it; an adopted stream only if the caller allows a new socket.
  return socket_.connected ? (owns_fd_ && socket_.reopen) : true;
}

void Dial::hop_failed(const std::error_code& ec) {
  if (ec == Errc::not_socks5 || ec == Errc::not_socks4 || ec == Errc::not_http ||
      ec == Errc::http_bad_reply) {
    keep_peer_octets();
  }
  // A retry the server answered (a refusal is an answer too) settles what the stall was.
  if (unpipelined_retry_ && (ec == Errc::auth_rejected || is_destination_failure(ec))) {
    learn_from_retry();
  }
  if (hop_state_) {
    stats_.waits += pump_.waits();
    stats_.method = hop_state_->method();
    stats_.method_text = hop_state_->method_text();
    detail_ = hop_state_->detail();
  }
  pump_.reset();
  hop_state_.reset();
  if (ec == Errc::pipelining_stalled) {
    if (can_reconnect() && !deadline_.expired()) {
      // The server seems to have dropped our pipelined octets: same proxy, a new connection,
      // one message per round trip. Same deadline: nothing restarts it. Whether the stall was
      // a drop is decided when the retry is through (learn_pipelining()).
      if (plan_.observer != nullptr) plan_.observer->pipelining_fallback(current_);
      stats_.fell_back = true;
      unpipelined_retry_ = true;
      stalled_hop_ = current_;
      retry_from_ = Clock::now();
      stalled_for_ = retry_from_ - selected_at_;
      reset_socket();
      // Where the stalled connection went: the address this dial connected to, or the one
      // the adopted socket was said to be connected to.
      sockaddr_storage ss = addr_;
      if (!tcp_connected_ && socket_.endpoint.to_sockaddr(ss) == 0) {
        fail(ec, DialStage::handshake);
        return;
      }
      addr_more_.clear();
      addr_count_ = 0;
      add_address(ss);
      addr_pos_ = 0;
      attempt_until_ = deadline_.at();
      hop_ = 0;
      if (plan_.chain == ChainMode::strict) current_ = 0;
      state_ = State::address;
      return;
    }
    fail(ec, DialStage::handshake);
    return;
  }
  if (is_destination_failure(ec)) {
    fail(ec, DialStage::handshake);  // the proxy answered: no failover, no cool-down
    return;
  }
  // Everything else is the proxy's fault (a timeout too: with the deadline gone, no other
  // proxy is tried).
  proxy_failed(current_, DialStage::handshake, ec);
}

void Dial::keep_peer_octets() {
  // What the server said instead of a method selection: the octets already read and what else
  // has arrived, for a message that names the other protocol.
  const ByteView first = pump_.last_read();
  peer_octets_.assign(first.begin(), first.end());
  std::uint8_t more[64];
  const ssize_t n = sys().recv(fd_, more, sizeof more, MSG_DONTWAIT);
  if (n > 0) peer_octets_.append(more, more + n);
}

void Dial::learn_pipelining(PipeliningVerdict v) {
  verdict_ = v;
  const std::size_t i = unpipelined_retry_ ? stalled_hop_ : current_;
  remember_pipelining(plan_.proxies[i], v);
  if (plan_.observer != nullptr) {
    plan_.observer->pipelining_learned(
        i, v, std::chrono::duration_cast<std::chrono::milliseconds>(stalled_for_));
  }
}

void Dial::learn_from_retry() {
  // Answered faster than the silence it replaced: the octets were dropped. As slow or slower:
  // the proxy was slow to reach the destination, and pipelining works.
  learn_pipelining(Clock::now() - retry_from_ < stalled_for_ ? PipeliningVerdict::drops
                                                             : PipeliningVerdict::works);
  unpipelined_retry_ = false;
}

Dial::Clock::time_point Dial::stall_at(Clock::time_point now) {
  if (selected_at_ == Clock::time_point{}) selected_at_ = now;
  auto wait = std::chrono::duration_cast<Clock::duration>(plan_.stall_timeout);
  if (verdict_ == PipeliningVerdict::unknown) {
    // Not known yet: a dropping server shows itself sooner. Eight round trips of the method
    // selection, within [probe_stall, stall_timeout].
    const auto rtt = selected_at_ - hop_sent_;
    const Clock::duration floor = std::min<Clock::duration>(plan_.probe_stall, wait);
    wait = std::clamp<Clock::duration>(8 * rtt, floor, wait);
  }
  return selected_at_ + wait;
}

void Dial::hop_done() {
  if (plan_.pipelining == Pipelining::automatic) {
    if (unpipelined_retry_ && (hop_ + 1 >= hops())) {
      learn_from_retry();
    } else if (hop_state_->pipelined() && verdict_ == PipeliningVerdict::unknown) {
      learn_pipelining(PipeliningVerdict::works);
    }
  }
  stats_.waits += pump_.waits();
  stats_.method = hop_state_->method();
  stats_.method_text = hop_state_->method_text();
  if (hop_ + 1 < hops()) {
    // The next hop's handshake would have to travel inside this hop's protection layer,
    // which a chain does not do: only level clear can be chained.
    if (hop_state_->take_protection()) {
      hop_failed(make_error_code(Errc::invalid_argument));
      return;
    }
    ++hop_;
    current_ = hop_;
    state_ = after_reaching(hop_);
    return;
  }
  if (request_.command) bound_ = hop_state_->bound();
  protection_ = hop_state_->take_protection();
  if (ReplyReader* r = hop_state_->reply_reader()) reader_ = std::move(*r);
  if (plan_.measure) stats_.handshake_time = Clock::now() - t_handshake_;
  pump_.reset();
  hop_state_.reset();
  state_ = State::done;
}

void Dial::reset_socket() noexcept {
  if (control_ >= 0) sys().close(std::exchange(control_, -1));
  if (fd_ < 0 || !dialed_) return;
  dialed_ = false;
  if (owns_fd_) {
    sys().close(fd_);
    fd_ = -1;
    return;
  }
  // The caller's socket: dissolve the association so it can connect again, and take the
  // error the kernel may have left (ECONNRESET...) so the caller never sees a stale one.
  sockaddr sa{};
  sa.sa_family = AF_UNSPEC;
  sys().connect(fd_, &sa, sizeof sa);
  int err = 0;
  socklen_t len = sizeof err;
  sys().getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
}

Dial::Step Dial::fail(const std::error_code& ec, DialStage stage) {
  error_ = ec;
  stage_ = stage;
  reset_socket();
  pump_.reset();
  hop_state_.reset();
  state_ = State::failed;
  step_ = Step{Next::failed, 0, {}, 0};
  return step_;
}

bool Dial::suits(std::size_t i) {
  // Whether proxy `i`'s protocol can carry what this dial asks of it: in a strict chain every
  // hop but the last only connects onwards.
  const bool last = plan_.chain != ChainMode::strict || i + 1 >= plan_.proxies.size();
  HopRequest r;
  if (last) {
    r.command = request_.command;
    r.target = request_.target;
  } else {
    const ProxyUri& next = plan_.proxies[i + 1];
    if (!next.unix_path.empty()) {
      last_error_ = Errc::target_not_expressible;  // a Unix socket is not reached through a proxy
      stage_ = DialStage::protocol;
      return false;
    }
    r.target = Address::from_host(next.host, next.port);
  }
  if (!request_.command && last) return true;  // authentication only
  auto ok = can_carry(plan_.proxies[i], r);
  if (!ok && (!last_error_ || stage_ == DialStage::protocol)) {
    // Why no proxy was used, unless an earlier one failed for a reason of its own.
    last_error_ = ok.error();
    stage_ = DialStage::protocol;
  }
  return static_cast<bool>(ok);
}

std::optional<Dial::Step> Dial::do_pick() {
  if (next_ >= order_count_) {
    return fail(last_error_ ? last_error_ : make_error_code(Errc::invalid_argument), stage_);
  }
  current_ = order_count_ > order_inline_.size() ? order_more_[next_] : order_inline_[next_];
  ++next_;
  hop_ = 0;
  if (plan_.chain == ChainMode::strict) {
    for (std::size_t i = 0; i < plan_.proxies.size(); ++i) {
      if (!suits(i)) {
        current_ = i;
        return fail(last_error_, stage_);
      }
    }
  } else if (!suits(current_)) {
    // This proxy's protocol cannot do it (UDP ASSOCIATE through an HTTP proxy): the next one
    // that can, without cooling this one down.
    return std::nullopt;
  }
  if (!resolve(current_)) {
    proxy_failed(current_, DialStage::resolve, last_error_);
    return std::nullopt;
  }
  // A proxy that drops SYNs must not eat the whole deadline while others wait: each proxy
  // still to try gets an equal share of what is left for its TCP connect.
  const std::size_t left = order_count_ - next_ + 1;
  attempt_until_ = deadline_.at();
  if (left > 1) {
    const auto now = Clock::now();
    if (now < deadline_.at()) {
      attempt_until_ = now + (deadline_.at() - now) / static_cast<long>(left);
    }
  }
  state_ = State::address;
  return std::nullopt;
}

std::optional<Dial::Step> Dial::do_address() {
  // Time passes only in waits: before the first attempt there is nothing to check.
  if (last_error_ && deadline_.expired()) {
    proxy_failed(current_, DialStage::tcp_connect, Errc::timed_out);
    return std::nullopt;
  }
  if (addr_pos_ >= addr_count_) {
    proxy_failed(current_, DialStage::tcp_connect, last_error_);
    return std::nullopt;
  }
  addr_ = address_at(addr_pos_++);
  addr_len_ = length_of(addr_);
  if (owns_fd_) {
    if (fd_ >= 0) sys().close(fd_);
    // A Unix socket has no connect in progress: a non-blocking one whose listener's backlog is
    // full fails with EAGAIN at once. A blocking one waits for room (local, and bounded by
    // SO_SNDTIMEO to this attempt's share); its octets move with MSG_DONTWAIT anyway.
    const bool local = addr_.ss_family == AF_UNIX;
    fd_ =
        sys().socket(addr_.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (local ? 0 : SOCK_NONBLOCK), 0);
    if (fd_ < 0) {
      return fail(std::error_code(errno, std::generic_category()), DialStage::tcp_connect);
    }
    if (local) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(attempt_until_ - Clock::now())
                    .count();
      if (us < 1000) us = 1000;  // zero would mean no limit
      timeval tv{};
      tv.tv_sec = static_cast<time_t>(us / 1000000);
      tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
      sys().setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
  }
  dialed_ = true;
  stage_ = DialStage::tcp_connect;
  step_ = Step{Next::connect, 0, attempt_until_, 0};
  return step_;
}

std::optional<Dial::Step> Dial::do_connecting() {
  if (!woke_) {
    return wait_for(POLLOUT, attempt_until_,
                    attempt_until_ < deadline_.at() ? kTimerAttempt : kTimerDeadline, Clock::now());
  }
  woke_ = false;
  int err = 0;
  socklen_t len = sizeof err;
  if (sys().getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    tcp_failed(err);
  } else {
    connected();
  }
  return std::nullopt;
}

std::optional<Dial::Step> Dial::do_transport() {
  stage_ = DialStage::transport;
  // Only a socket of the dial's own can be handed to the layer: the caller's stays theirs.
  if (plan_.transport == nullptr || !owns_fd_) {
    proxy_failed(current_, DialStage::transport, Errc::tls_unavailable);
    return std::nullopt;
  }
  const int stream = std::exchange(fd_, -1);
  auto started = plan_.transport->start(stream, plan_.proxies[current_], deadline_);
  if (!started) {
    dialed_ = false;
    proxy_failed(current_, DialStage::transport, started.error());
    return std::nullopt;
  }
  fd_ = started->plain;
  if (control_ >= 0) sys().close(control_);  // an earlier hop's layer lives on without it
  control_ = started->control;
  dialed_ = true;
  report_len_ = 0;
  woke_ = false;
  state_ = State::layer_wait;
  return std::nullopt;
}

std::optional<Dial::Step> Dial::do_layer_wait() {
  if (!woke_) return wait_for(POLLIN, deadline_.at(), kTimerDeadline, Clock::now());
  woke_ = false;
  // Exactly the report: its two octets, then the text its length names.
  for (;;) {
    const std::size_t need = report_len_ < 2 ? 2 : 2 + std::size_t{report_[1]};
    if (report_len_ >= need) break;
    const ssize_t n =
        sys().recv(fd_, report_.data() + report_len_, need - report_len_, MSG_DONTWAIT);
    if (n > 0) {
      report_len_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return wait_for(POLLIN, deadline_.at(), kTimerDeadline, Clock::now());
    }
    detail_ = "the TLS layer ended without a word";
    proxy_failed(current_, DialStage::transport, Errc::tls_handshake_failed);
    return std::nullopt;
  }
  const std::error_code ec = transport_error(report_[0]);
  if (ec) {
    detail_.assign(report_.begin() + 2, report_.begin() + 2 + report_[1]);
    proxy_failed(current_, DialStage::transport, ec);
    return std::nullopt;
  }
  detail_.clear();
  state_ = request_.tcp_only ? State::done : State::hop;
  return std::nullopt;
}

std::optional<Dial::Step> Dial::do_hop() {
  const std::size_t p = plan_.chain == ChainMode::strict ? hop_ : current_;
  current_ = p;
  const ProxyUri& uri = plan_.proxies[p];
  const bool last = hop_ + 1 >= hops();
  HopRequest r;
  // The next hop, as its URI names it (an address, or a name for this hop to resolve), or
  // the destination.
  r.target = last ? request_.target
                  : Address::from_host(plan_.proxies[p + 1].host, plan_.proxies[p + 1].port);
  r.command = last ? request_.command : wire::Command::connect;
  r.gssapi = plan_.gssapi;
  // What is known about this proxy, asked once per hop (a hash and a short scan).
  verdict_ = plan_.pipelining == Pipelining::automatic ? pipelining_verdict(uri)
                                                       : PipeliningVerdict::unknown;
  r.pipelining = plan_.pipelining == Pipelining::on ||
                 (plan_.pipelining == Pipelining::automatic && !unpipelined_retry_ &&
                  verdict_ != PipeliningVerdict::drops);
  auto made = make_hop(uri, std::move(r));
  if (!made) return fail(made.error(), DialStage::handshake);
  hop_state_ = std::move(*made);
  auto s = hop_state_->start();
  if (!s) {
    detail_ = hop_state_->detail();
    return fail(s.error(), DialStage::handshake);
  }
  pump_.reset();
  stats_.pipelined = hop_state_->pipelined();
  if (stats_.pipelined && plan_.pipelining == Pipelining::automatic) {
    hop_sent_ = Clock::now();
    selected_at_ = {};
  }
  stage_ = DialStage::handshake;
  woke_ = false;
  state_ = State::handshake;
  return std::nullopt;
}

std::optional<Dial::Step> Dial::do_handshake() {
  const bool readable = woke_;
  woke_ = false;
  auto want = pump_.run(*hop_state_, fd_, sys(), readable);
  if (!want) {
    hop_failed(want.error());
    return std::nullopt;
  }
  if (*want == Pump::Want::done) {
    hop_done();
    return std::nullopt;
  }
  const auto now = Clock::now();
  if (now >= deadline_.at()) {  // also bounds a server that trickles
    hop_failed(handshake_timeout());
    return std::nullopt;
  }
  if (*want == Pump::Want::writable) return wait_for(POLLOUT, deadline_.at(), kTimerDeadline, now);
  if (plan_.pipelining == Pipelining::automatic && hop_state_->pipelined() &&
      hop_state_->first_answered()) {
    if (hop_state_->answered_beyond_first()) {
      // It answered the credentials sent with the greeting: it reads pipelined octets.
      if (verdict_ == PipeliningVerdict::unknown) learn_pipelining(PipeliningVerdict::works);
    } else {
      // Pipelined octets a server dropped are never answered: silence after the method
      // selection means a stall, not a slow server.
      const auto until = stall_at(now);
      if (until < deadline_.at()) return wait_for(POLLIN, until, kTimerStall, now);
    }
  }
  return wait_for(POLLIN, deadline_.at(), kTimerDeadline, now);
}

Dial::Step Dial::run() {
  for (;;) {
    std::optional<Step> s;
    switch (state_) {
      case State::pick: s = do_pick(); break;
      case State::address: s = do_address(); break;
      case State::connecting: s = do_connecting(); break;
      case State::transport: s = do_transport(); break;
      case State::layer_wait: s = do_layer_wait(); break;
      case State::hop: s = do_hop(); break;
      case State::handshake: s = do_handshake(); break;
      case State::done: step_ = Step{Next::done, 0, {}, 0}; return step_;
      case State::failed: step_ = Step{Next::failed, 0, {}, 0}; return step_;
    }
    if (s) return *s;
  }
}

namespace {

int poll_ms_until(Clock::time_point until) {
  const auto left = until - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

timeval to_timeval(Clock::time_point until) {
  // At least 1 ms: an SO_SNDTIMEO of zero means "no limit".
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(until - Clock::now()).count();
  if (us < 1000) us = 1000;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

}  // namespace

DriveOutcome run_blocking(Dial& dial, const BlockingOptions& options) {
  const Syscalls& sys = dial.syscalls();
  // The caller's own send timeout bounds its connect() (EINPROGRESS after it), as without us.
  timeval own{};
  auto give_up = Clock::time_point::max();
  if (options.blocking_socket && dial.fd() >= 0) {
    socklen_t len = sizeof own;
    if (sys.getsockopt(dial.fd(), SOL_SOCKET, SO_SNDTIMEO, &own, &len) == 0 &&
        options.send_timeout && (own.tv_sec != 0 || own.tv_usec != 0)) {
      give_up =
          Clock::now() + std::chrono::seconds(own.tv_sec) + std::chrono::microseconds(own.tv_usec);
    }
  }
  auto stop = [&] { return options.stop_on_signal != nullptr && options.stop_on_signal(); };
  Dial::Step s = dial.started() ? dial.step() : dial.start();
  for (;;) {
    switch (s.next) {
      case Dial::Next::done:
      case Dial::Next::failed: return DriveOutcome::finished;
      case Dial::Next::connect: {
        int rc = 0;
        int err = 0;
        if (options.blocking_socket) {
          // A blocking connect() waits as long as the kernel retries SYNs (minutes): bound it
          // by this attempt's share of the deadline (or the caller's own limit), then put the
          // socket's own value back.
          const auto until = give_up < s.until ? give_up : s.until;
          const timeval tv = to_timeval(until);
          sys.setsockopt(dial.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
          rc = sys.connect(dial.fd(), dial.address(), dial.address_length());
          err = rc == 0 ? 0 : errno;
          sys.setsockopt(dial.fd(), SOL_SOCKET, SO_SNDTIMEO, &own, sizeof own);
          if (err == EINPROGRESS && give_up < s.until && Clock::now() >= give_up) {
            dial.on_connect(err);
            return DriveOutcome::gave_up;
          }
          if (err == EINTR && stop()) {
            dial.on_connect(err);
            return DriveOutcome::interrupted;
          }
        } else {
          rc = sys.connect(dial.fd(), dial.address(), dial.address_length());
          err = rc == 0 ? 0 : errno;
        }
        s = dial.on_connect(err);
        break;
      }
      case Dial::Next::wait: {
        const bool theirs = give_up < s.until;
        pollfd p{dial.fd(), s.events, 0};
        const int n = sys.poll(&p, 1, theirs ? poll_ms_until(give_up) : s.poll_ms);
        if (n > 0) {
          s = dial.on_ready(p.revents);
        } else if (n == 0) {
          if (theirs) return DriveOutcome::gave_up;
          s = dial.on_timeout();
        } else if (errno == EINTR) {
          if (stop()) return DriveOutcome::interrupted;
        } else {
          s = dial.on_error(errno);
        }
        break;
      }
    }
  }
}

}  // namespace socks5
