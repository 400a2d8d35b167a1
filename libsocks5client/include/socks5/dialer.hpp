#pragma once
// The dialer: ONE resumable state machine for everything between "a socket" and "a stream
// connected to the destination through the proxies": proxy choice, failover with cool-down,
// strict chains (each hop a CONNECT through the previous one), the per-attempt TCP connect,
// the handshake of every hop, and the fallback for servers that stall on pipelining.
//
// It never blocks and never sleeps. A driver asks it what to do next (start(), then on_*()):
// issue a connect(), wait for readiness until a point in time, or stop (done / failed).
// run_blocking() is the blocking driver (the Client, `socksify check`, the shim today); a
// non-blocking driver can pump the same machine from an event loop. One Deadline bounds the
// whole dial: it is passed in and never restarted, whatever happens inside.
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "socks5/address.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/hop.hpp"
#include "socks5/negotiation.hpp"
#include "socks5/stream.hpp"
#include "socks5/syscalls.hpp"
#include "socks5/transport.hpp"
#include "socks5/uri.hpp"

namespace socks5 {

/// Whether greeting, credentials and request leave in one write.
enum class Pipelining {
  off,        ///< one message per round trip, like every other client
  on,         ///< always pipeline when a single method is offered
  automatic,  ///< pipeline, but a server that stalls on it is remembered and not pipelined
};

/// What is known about a proxy and pipelined handshakes.
enum class PipeliningVerdict : std::uint8_t {
  unknown,  ///< not seen yet: a stall is suspected early (DialPlan::probe_stall)
  works,    ///< it answered octets sent together with the greeting
  drops,    ///< it dropped them (reads one message per recv(), as microsocks does)
};

/// What a handshake did (all hops of a chain together).
struct HandshakeStats {
  wire::Method method = wire::Method::no_acceptable;  ///< method the (last) server chose
  const char* method_text = "none";                   ///< its name: "username/password", "Basic"...
  int waits = 0;           ///< times the client waited for a server (TCP connect excluded)
  bool pipelined = false;  ///< greeting, credentials and request went in one write
  bool fell_back = false;  ///< a stalled pipelined attempt was retried without pipelining
  std::chrono::nanoseconds connect_time{0};    ///< TCP connect to the (first) proxy
  std::chrono::nanoseconds handshake_time{0};  ///< greeting to the last reply
};

/// How several proxies are used.
enum class ChainMode : std::uint8_t {
  failover,  ///< one proxy per connection: the first healthy one, then the next on failure
  strict,    ///< through every proxy in order: A, then CONNECT to B through A, then to C...
};

/// Per-proxy cool-down, shared by the dials of a process (the caller implements it).
class ProxyHealth {
 public:
  /// True while proxy `i` (index into DialPlan::proxies) should be tried last.
  virtual bool cooling(std::size_t i) const noexcept = 0;
  /// Proxy `i` failed (unreachable, broken or refusing us).
  virtual void failed(std::size_t i) noexcept = 0;

 protected:
  ~ProxyHealth() = default;
};

/// Where a dial was when something happened.
enum class DialStage : std::uint8_t {
  protocol,     ///< no proxy's protocol can carry the request (can_carry())
  resolve,      ///< the proxy's own address
  tcp_connect,  ///< the TCP (or Unix socket) connect to the proxy
  transport,    ///< the layer under the hop (TLS toward an https proxy)
  handshake,    ///< the proxy's protocol
};

/// Progress reports (optional; the shim logs from them). Called from inside on_*().
class DialObserver {
 public:
  /// Proxy `i` (or chain hop `i`) failed at `stage` with `ec`; `next` says whether the dial
  /// goes on with another proxy.
  virtual void proxy_failed(std::size_t i, DialStage stage, const std::error_code& ec,
                            bool next) noexcept = 0;
  /// Proxy `i` seems to have dropped pipelined octets: the dial reconnects and sends one
  /// message per round trip.
  virtual void pipelining_fallback(std::size_t i) noexcept = 0;
  /// The dial learned what proxy `i` does with pipelined octets (it is now remembered in this
  /// process, see pipelining_verdict()); `stalled` is how long it waited before falling back
  /// (zero when nothing stalled).
  virtual void pipelining_learned(std::size_t /*i*/, PipeliningVerdict /*v*/,
                                  std::chrono::milliseconds /*stalled*/) noexcept {}

 protected:
  ~DialObserver() = default;
};

/// The proxies and how to use them. Holds views: the caller keeps the storage alive.
struct DialPlan {
  std::span<const ProxyUri> proxies;
  /// Per proxy, its address parsed once (ss_family AF_UNSPEC: resolve the host name when
  /// needed); may be empty.
  std::span<const sockaddr_storage> numeric;
  ChainMode chain = ChainMode::failover;
  Pipelining pipelining = Pipelining::automatic;
  /// In automatic mode: silence after the method selection that counts as a stall, for a
  /// proxy known to answer pipelined octets.
  std::chrono::milliseconds stall_timeout{1500};
  /// For a proxy whose pipelining is not known yet: the stall counts after eight times the
  /// method selection's round trip, but at least this and at most stall_timeout. A fallback
  /// is believed (and the proxy remembered as dropping) only if the retry, one message per
  /// round trip, then finished faster than the silence it replaced: a proxy that was merely
  /// slow to reach the destination is remembered as `works` instead.
  std::chrono::milliseconds probe_stall{200};
  ProxyHealth* health = nullptr;
  DialObserver* observer = nullptr;
  /// GSSAPI (RFC 1961) instead of the URI's method: every hop offers only method X'01'.
  /// nullptr: "none", or username/password when the URI names a user.
  const GssapiOptions* gssapi = nullptr;
  /// Time the TCP connect and the handshakes (HandshakeStats); off saves clock reads.
  bool measure = true;
  const Syscalls* syscalls = nullptr;  ///< nullptr = Syscalls::libc()
  /// The layer an https:// proxy needs (TLS), used on the dial's own sockets only; nullptr:
  /// such a proxy fails with tls_unavailable.
  Transport* transport = nullptr;
};

/// The socket a dial works on.
struct DialSocket {
  /// -1: the dial opens its own sockets (non-blocking, close-on-exec) and hands the last one
  /// over with release_fd(). Otherwise the caller's socket: reconnected in place (connect with
  /// AF_UNSPEC) when a proxy fails, never closed, O_NONBLOCK never touched.
  int fd = -1;
  int family = AF_UNSPEC;  ///< the caller's socket's domain (AF_INET or AF_INET6)
  /// The socket is already connected to the first proxy (at `endpoint`): start negotiating.
  bool connected = false;
  Address endpoint;
  /// With `connected` and an owned socket: a stall may be retried on a new socket to
  /// `endpoint`. (A borrowed stream that was not opened by us cannot be reopened.)
  bool reopen = false;
  bool owned = false;  ///< `fd` is handed to the dial, which may close and replace it
};

/// What the last hop is asked for.
struct DialRequest {
  std::optional<wire::Command> command = wire::Command::connect;  ///< nullopt: authenticate only
  Address target;
  bool tcp_only = false;  ///< stop once TCP reaches the first proxy (Client::open)
};

/// One dial. Move-only.
class Dial {
 public:
  using Clock = std::chrono::steady_clock;
  /// What the driver does next.
  enum class Next : std::uint8_t {
    connect,  ///< connect(fd(), address()) and report with on_connect(); by `until`
    wait,     ///< poll fd() for `events` until `until`; report on_ready() or on_timeout()
    done,     ///< connected through the proxies (or authenticated)
    failed,   ///< error() says why
  };
  struct Step {
    Next next = Next::failed;
    short events = 0;
    Clock::time_point until{};
    int poll_ms = 0;  ///< wait: milliseconds from when the step was made to `until`, rounded up
  };

  Dial(const DialPlan& plan, DialSocket socket, DialRequest request, Deadline deadline);
  Dial(Dial&&) noexcept;
  Dial& operator=(Dial&&) noexcept;
  Dial(const Dial&) = delete;
  Dial& operator=(const Dial&) = delete;
  ~Dial();

  /// The first step.
  Step start();
  /// The connect() asked for returned 0 or failed with `err` (EINPROGRESS, EINTR included).
  Step on_connect(int err);
  /// The socket reported `revents` for the wait asked for.
  Step on_ready(short revents);
  /// The wait's `until` passed with nothing to report.
  Step on_timeout();
  /// Waiting failed with `err` (poll() itself): the dial fails with it.
  Step on_error(int err);
  /// True once start() was called.
  bool started() const noexcept { return started_; }
  /// The step to act on now (the last one returned).
  const Step& step() const noexcept { return step_; }
  /// The system calls the dial uses (and its driver should use).
  const Syscalls& syscalls() const noexcept { return sys(); }

  /// The socket to act on (-1 before an own socket exists).
  int fd() const noexcept { return fd_; }
  /// The address to connect to (Next::connect).
  const sockaddr* address() const noexcept;
  socklen_t address_length() const noexcept { return addr_len_; }
  /// Hands over an own socket (DialSocket::fd == -1 or owned); -1 otherwise.
  int release_fd() noexcept;
  /// The caller's socket is now reached as `fd` (dup'd, the old number closed).
  void rebind(int fd) noexcept {
    if (!owns_fd_) fd_ = fd;
  }

  /// Why the dial failed (Next::failed).
  const std::error_code& error() const noexcept { return error_; }
  /// The stage it failed at.
  DialStage failed_stage() const noexcept { return stage_; }
  /// True when it failed because of the caller's own socket or address (EINVAL, ENOTSOCK,
  /// EAFNOSUPPORT...): no proxy was at fault, none was cooled or skipped.
  bool caller_fault() const noexcept { return caller_fault_; }
  /// The proxy (failover) or hop (strict) the dial is at, or ended with.
  std::size_t proxy() const noexcept { return current_; }
  /// The address of the first proxy as connected.
  const Address& endpoint() const;
  /// The destination asked for.
  const Address& target() const noexcept { return request_.target; }
  /// The command asked for (nullopt: authentication only).
  const std::optional<wire::Command>& command() const noexcept { return request_.command; }
  /// What a server of another protocol sent instead of an answer (errors not_socks5,
  /// not_socks4, not_http), or a malformed HTTP reply: its first octets, as received.
  const std::string& peer_octets() const noexcept { return peer_octets_; }
  /// What the failed hop had to say (Hop::detail(): an HTTP status line, a 407's methods).
  const std::string& detail() const noexcept { return detail_; }
  /// The final reply's BND address (with a command).
  const Address& bound() const noexcept { return bound_; }
  const HandshakeStats& stats() const noexcept { return stats_; }
  /// After done: the protection layer (GSSAPI) and the reply reader of the last hop (SOCKS5).
  std::unique_ptr<Protection> take_protection() noexcept { return std::move(protection_); }
  ReplyReader& reader() noexcept { return reader_; }
  /// After done: the control descriptor of the last transport started (TransportStart), now
  /// the caller's; -1 if none.
  int release_transport_control() noexcept { return std::exchange(control_, -1); }

 private:
  enum class State : std::uint8_t {
    pick,        // choose the next proxy
    address,     // try the current proxy's next address
    connecting,  // waiting for the TCP connect to complete
    transport,   // start the layer under the hop (TLS)
    layer_wait,  // waiting for the layer's report
    hop,         // start the handshake with the current hop
    handshake,   // moving the hop's octets
    done,
    failed,
  };
  Step run();
  // One function per state: each returns the step for the driver, or nullopt to go on with
  // the state it moved to.
  std::optional<Step> do_pick();
  std::optional<Step> do_address();
  std::optional<Step> do_connecting();
  std::optional<Step> do_transport();
  std::optional<Step> do_layer_wait();
  State after_reaching(std::size_t i) const noexcept;
  std::optional<Step> do_hop();
  std::optional<Step> do_handshake();
  bool suits(std::size_t i);
  Step wait_for(short events, Clock::time_point until, int timer, Clock::time_point now);
  bool resolve(std::size_t i);
  void add_address(const sockaddr_storage& ss);
  const sockaddr_storage& address_at(std::size_t i) const noexcept;
  void connected();
  void tcp_failed(int err);
  void proxy_failed(std::size_t i, DialStage stage, const std::error_code& ec);
  void hop_failed(const std::error_code& ec);
  void keep_peer_octets();
  std::error_code handshake_timeout() const noexcept;
  void learn_pipelining(PipeliningVerdict v);
  void learn_from_retry();
  Clock::time_point stall_at(Clock::time_point now);
  void hop_done();
  bool can_reconnect() const noexcept;
  void reset_socket() noexcept;
  Step fail(const std::error_code& ec, DialStage stage);
  std::size_t hops() const noexcept;
  const Syscalls& sys() const noexcept { return *sys_; }

  DialPlan plan_;
  const Syscalls* sys_;
  DialSocket socket_;
  DialRequest request_;
  Deadline deadline_;
  State state_ = State::pick;
  Step step_;
  int fd_ = -1;
  bool owns_fd_ = false;
  bool dialed_ = false;  // fd_ was connected (or is connecting) by this dial
  bool caller_fault_ = false;
  bool started_ = false;
  // Failover: the proxies in the order to try them, each once (inline for the usual few).
  std::array<std::uint32_t, 8> order_inline_;
  std::vector<std::uint32_t> order_more_;
  std::size_t order_count_ = 0;
  std::size_t next_ = 0;     // next index into the order
  std::size_t current_ = 0;  // proxy (failover) or hop (strict) in use
  std::size_t hop_ = 0;      // hop being negotiated (strict); 0 in failover
  // The current proxy's addresses (inline for the usual one).
  sockaddr_storage addr_inline_;
  std::vector<sockaddr_storage> addr_more_;
  std::size_t addr_count_ = 0;
  std::size_t addr_pos_ = 0;
  sockaddr_storage addr_;
  socklen_t addr_len_ = 0;
  Clock::time_point attempt_until_{};  // the TCP connect of this attempt gives up here
  int timer_ = 0;                      // what the current wait's `until` is: see dialer.cpp
  bool woke_ = false;
  std::error_code error_;
  std::error_code last_error_;
  DialStage stage_ = DialStage::resolve;
  mutable Address endpoint_;    // made when asked for (only check and Client::open ask)
  bool tcp_connected_ = false;  // addr_ is where this dial connected fd_ itself
  Address bound_;
  std::string peer_octets_;
  std::string detail_;
  // Pipelining in automatic mode: when the hop's first write left and the method selection
  // came, whether the retry after a stall runs, when it started and how long the stall was.
  Clock::time_point hop_sent_{};
  Clock::time_point selected_at_{};
  Clock::time_point retry_from_{};
  Clock::duration stalled_for_{};
  std::size_t stalled_hop_ = 0;
  bool unpipelined_retry_ = false;
  PipeliningVerdict verdict_ = PipeliningVerdict::unknown;  // of the current hop's proxy
  HandshakeStats stats_;
  Clock::time_point t_connect_{};
  Clock::time_point t_handshake_{};
  std::unique_ptr<Hop> hop_state_;
  // The transport's report, read exactly (status, length, text).
  std::array<std::uint8_t, 257> report_{};
  std::size_t report_len_ = 0;
  int control_ = -1;  // the last transport's control descriptor
  Pump pump_;
  std::unique_ptr<Protection> protection_;
  ReplyReader reader_;
};

/// How run_blocking() treats the caller's own limits.
struct BlockingOptions {
  /// The socket is in blocking mode: each connect() is bounded with SO_SNDTIMEO (set for the
  /// call, then put back), and the socket's own SO_SNDTIMEO, if set, is a point where the
  /// caller gives up (Outcome::gave_up), as the kernel's connect() does.
  bool blocking_socket = false;
  /// With blocking_socket: also give up at the socket's own SO_SNDTIMEO (as connect() does;
  /// false for a caller that must wait for the outcome, such as getsockopt(SO_ERROR)).
  bool send_timeout = true;
  /// A signal interrupted a wait or a connect: return Outcome::interrupted when this says so
  /// (nullptr: always go on).
  bool (*stop_on_signal)() = nullptr;
};

/// Why run_blocking() returned.
enum class DriveOutcome : std::uint8_t {
  finished,     ///< the dial is done or failed
  interrupted,  ///< stop_on_signal() said so; call again to resume
  gave_up,      ///< the socket's own SO_SNDTIMEO passed; call again to resume
};

/// Runs `dial` to the end with poll(), or resumes it where an earlier call returned.
DriveOutcome run_blocking(Dial& dial, const BlockingOptions& options = {});

/// What this process knows about the proxy and pipelining (by host and port).
PipeliningVerdict pipelining_verdict(const ProxyUri& proxy) noexcept;
/// Records it (replacing what was known).
void remember_pipelining(const ProxyUri& proxy, PipeliningVerdict verdict) noexcept;
/// True if this proxy dropped pipelined octets earlier (pipelining_verdict() == drops).
bool pipelining_known_bad(const ProxyUri& proxy) noexcept;
/// Forgets what was learned about pipelining (for tests).
void reset_pipelining_memory() noexcept;

}  // namespace socks5
