// The seccomp supervisor: see supervisor.hpp and doc/supervisor.md.
#include "supervisor.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dns_answer.hpp"
#include "fake_dns.hpp"
#include "launch.hpp"
#include "policy.hpp"
#include "program.hpp"
#include "socks5/address.hpp"
#include "socks5/dialer.hpp"
#include "socks5/error.hpp"
#include "socks5/gssapi.hpp"

namespace socksify::tool {
namespace {

int sys_seccomp(unsigned op, unsigned flags, void* args) {
  return static_cast<int>(syscall(SYS_seccomp, op, flags, args));
}
int sys_pidfd_open(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}
int sys_pidfd_getfd(int pidfd, int fd) {
  return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
}

// The filter: connect and getpeername to the supervisor; io_uring_setup refused (it would
// bypass the filter); everything else allowed. Only the x86-64 ABI (other ABIs: refused with
// ENOSYS for now; an i386 program needs socketcall handled too).
bool install_filter(int& listener) {
  constexpr unsigned kArchOffset = offsetof(seccomp_data, arch);
  constexpr unsigned kNrOffset = offsetof(seccomp_data, nr);
  constexpr unsigned kArg4Low = offsetof(seccomp_data, args) + 4 * sizeof(std::uint64_t);
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArchOffset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 11, 0),
      // i386 (a 32-bit program, or int 0x80): its network calls are refused, the rest goes on
      // (the supervisor reads no 32-bit structures): socketcall 102, sendmmsg 345, connect
      // 362, sendto 369, sendmsg 370, io_uring_setup 425.
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOffset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 102, 6, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 345, 5, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 362, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 369, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 370, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 425, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENETUNREACH),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOffset),
      // x32 system calls (nr with bit 30) are refused: the same numbers, another ABI.
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpeername, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      // Datagrams sent to an address: sendmsg and sendmmsg always (the address is in
      // memory), sendto when its address argument is not null (send() is sendto without one).
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmsg, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmmsg, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendto, 0, 6),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg4Low),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg4Low + 4),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  // Signals do not interrupt a supervised connect once it was received (5.19 and later).
  unsigned flags = SECCOMP_FILTER_FLAG_NEW_LISTENER;
#ifdef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
  // (A test hook turns it off, to behave as on kernels before 5.19.)
  const char* off = std::getenv("SOCKSIFY_TEST_NO_KILLABLE_WAIT");
  if (off == nullptr || std::strcmp(off, "1") != 0) {
    listener =
        sys_seccomp(SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
    if (listener >= 0) return true;
  }
#endif
  listener = sys_seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog);
  return listener >= 0;
}

// The process (thread-group leader) of thread `tid`: pidfd_open wants a process.
pid_t process_of(pid_t tid) {
  // Usually the leader itself (a single-threaded program, Go's main thread): no /proc read.
  if (const int fd = sys_pidfd_open(tid); fd >= 0) {
    close(fd);
    return tid;
  }
  std::ifstream status("/proc/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Tgid:", 0) == 0) return static_cast<pid_t>(std::stol(line.substr(5)));
  }
  return tid;
}

bool read_memory(pid_t pid, std::uint64_t addr, void* out, std::size_t len) {
  iovec local{out, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

bool write_memory(pid_t pid, std::uint64_t addr, const void* in, std::size_t len) {
  iovec local{const_cast<void*>(in), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_writev(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

struct Supervisor {
  int listener = -1;
  settings::Config owned_config;
  const settings::Config* config = nullptr;
  shim::FakeDns* dns = nullptr;  // remote-DNS mode: the fake addresses handed out
  // The DNS responder (remote-DNS mode): a program's UDP socket to a name server is connected
  // here instead, and its queries are answered from the fake-address table.
  int responder = -1;
  sockaddr_storage responder_addr{};
  socklen_t responder_len = 0;
  std::mutex mu;
  // The destination each proxied socket asked for, by socket inode (getpeername answers it).
  std::map<ino_t, std::pair<sockaddr_storage, socklen_t>> peers;
  // Dials by socket inode. Without WAIT_KILLABLE_RECV (kernels before 5.19), a signal whose
  // handler has SA_RESTART makes the kernel restart a supervised connect: a second
  // notification for the same socket, while (or after) its dial runs. It gets that dial's
  // outcome instead of a second handshake on the same socket.
  struct Flight {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    int result = 0;
    sockaddr_storage dst{};
  };
  std::map<ino_t, std::shared_ptr<Flight>> flights;
};

void reply_continue(int listener, std::uint64_t id) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

void reply(int listener, std::uint64_t id, int error, long long val = 0) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.error = error == 0 ? 0 : -error;
  resp.val = val;
  ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

// What the kernel's reading of an address on `sock` depends on (policy.hpp).
shim::SocketFacts facts_of(int sock) {
  shim::SocketFacts f;
  socklen_t len = sizeof f.family;
  getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &f.family, &len);
  len = sizeof f.type;
  getsockopt(sock, SOL_SOCKET, SO_TYPE, &f.type, &len);
  f.type &= 0xF;
  len = sizeof f.protocol;
  getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &f.protocol, &len);
  return f;
}

// A v4-mapped destination on an IPV6_V6ONLY socket (the kernel refuses it).
bool v6only(int sock, const shim::AddressReading& r) {
  if (!r.v4_mapped) return false;
  int only = 0;
  socklen_t len = sizeof only;
  return getsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &only, &len) == 0 && only != 0;
}

bool still_valid(int listener, std::uint64_t id) {
  std::uint64_t v = id;
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &v) == 0;
}

// One connect(): the program's socket, duplicated, goes to the proxy.
void on_connect(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int fd = static_cast<int>(req.data.args[0]);
  const std::uint64_t addr_ptr = req.data.args[1];
  const auto len = static_cast<socklen_t>(req.data.args[2]);
  sockaddr_storage dst{};
  if (len > sizeof dst) {  // move_addr_to_kernel's answer
    reply(sv.listener, req.id, EINVAL);
    return;
  }
  if (!read_memory(pid, addr_ptr, &dst, len)) {
    reply(sv.listener, req.id, EFAULT);
    return;
  }
  const int pidfd = sys_pidfd_open(pid);
  const int sock = pidfd >= 0 ? sys_pidfd_getfd(pidfd, fd) : -1;
  if (pidfd >= 0) close(pidfd);
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return;
  }
  // The memory read and the descriptor belong to this notification's caller only if it is
  // still waiting (it could have died and its pid been reused).
  if (!still_valid(sv.listener, req.id)) {
    close(sock);
    return;
  }
  const shim::SocketFacts facts = facts_of(sock);
  const int type = facts.type;
  shim::Destination d;
  // The address as the kernel reads it on this socket: on an internet socket, anything but a
  // destination is refused or dissolves the association, never connected "as asked".
  shim::AddressReading reading;
  if (shim::is_inet(facts)) {
    reading = shim::read_address(facts, shim::AddressUse::connect,
                                 reinterpret_cast<sockaddr*>(&dst), len, d);
    if (reading.kind == shim::AddressReading::Kind::refused ||
        (reading.kind == shim::AddressReading::Kind::destination && v6only(sock, reading))) {
      close(sock);
      reply(sv.listener, req.id,
            reading.kind == shim::AddressReading::Kind::refused ? reading.error : ENETUNREACH);
      return;
    }
  }
  if (!shim::is_inet(facts) || reading.kind == shim::AddressReading::Kind::unspecified) {
    // Not an internet socket (a UNIX socket), or AF_UNSPEC: connected as asked, by the
    // supervisor itself (never with CONTINUE: the arguments could change after this check).
    const int rc = connect(sock, reinterpret_cast<sockaddr*>(&dst), len);
    reply(sv.listener, req.id, rc == 0 ? 0 : errno);
    close(sock);
    return;
  }
  // The same decision as the preloaded library's (policy.hpp), with the name behind a fake
  // address.
  char name[256] = {};
  shim::Context ctx;
  if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) {
    ctx.fake = true;
    if (sv.dns->name_of(d.family, d.ip.data(), name, sizeof name)) d.name = name;
  }
  const bool stream = type == SOCK_STREAM;
  const shim::Verdict v = shim::classify(
      *sv.config, stream ? shim::Operation::connect : shim::Operation::datagram, d, ctx);
  int e = 0;
  // In remote-DNS mode a name server is never asked from here (the policy refuses raw DNS to
  // it, as the preload does): a resolver of the program's own (Go's, static glibc's) is
  // answered by the supervisor instead, unless a rule of the user's sends it direct.
  const bool dns = !stream && d.port == 53 && sv.responder >= 0 &&
                   !(v.action == settings::Action::direct && v.rule > 0);
  if (dns) {
    if (connect(sock, reinterpret_cast<sockaddr*>(&sv.responder_addr), sv.responder_len) != 0) {
      e = errno;
    }
  } else if (v.action == settings::Action::reject) {
    e = socks5::to_errno(make_error_code(v.refusal));
  } else if (v.action == settings::Action::direct || v.action == settings::Action::loopback) {
    if (connect(sock, reinterpret_cast<sockaddr*>(&dst), len) != 0) e = errno;
  } else if (!stream) {
    e = ENETUNREACH;  // UDP through the proxy: not in the prototype (fail closed)
  } else {
    struct stat st {};
    const bool have_ino = fstat(sock, &st) == 0;
    std::shared_ptr<Supervisor::Flight> flight;
    bool first = true;
    if (have_ino) {
      std::lock_guard<std::mutex> lock(sv.mu);
      auto& slot = sv.flights[st.st_ino];
      if (slot && std::memcmp(&slot->dst, &dst, sizeof dst) == 0) {
        flight = slot;
        first = false;
      } else {
        slot = std::make_shared<Supervisor::Flight>();
        slot->dst = dst;
        flight = slot;
      }
    }
    if (!first) {
      // A restarted connect of a socket whose dial is under way or done: its outcome.
      std::unique_lock<std::mutex> lock(flight->m);
      flight->cv.wait_for(lock, sv.config->timeout + std::chrono::seconds(1),
                          [&] { return flight->done; });
      e = flight->done ? flight->result : ETIMEDOUT;
      lock.unlock();
      close(sock);
      reply(sv.listener, req.id, e);
      return;
    }
    socks5::Address target = shim::target_of(d);
    socks5::DialPlan plan;
    plan.proxies = sv.config->proxies;
    plan.chain = sv.config->chain;
    plan.pipelining = sv.config->pipelining;
    plan.gssapi = sv.config->gssapi ? &*sv.config->gssapi : nullptr;  // level clear only
    socks5::DialSocket ds;
    ds.fd = sock;
    ds.family = facts.family;
    socks5::DialRequest request;
    request.target = target;
    socks5::Dial dial(plan, ds, request, socks5::Deadline::after(sv.config->timeout));
    socks5::run_blocking(dial);  // non-blocking steps with poll: O_NONBLOCK is never touched
    if (dial.step().next != socks5::Dial::Next::done) {
      e = socks5::to_errno(dial.error());
      if (e == 0) e = ECONNREFUSED;
    } else if (have_ino) {
      std::lock_guard<std::mutex> lock(sv.mu);
      sv.peers[st.st_ino] = {dst, len};
    }
    if (flight) {
      std::lock_guard<std::mutex> lock(flight->m);
      flight->done = true;
      flight->result = e;
      flight->cv.notify_all();
    }
  }
  close(sock);
  reply(sv.listener, req.id, e);
}

// The DNS responder's loop: each query answered from the fake-address table (the shim's
// own composition, dns_answer.hpp). A name a direct rule keeps local is refused here (the
// prototype has no upstream).
void respond(Supervisor& sv) {
  std::uint8_t q[4096], out[4096 + 32];
  for (;;) {
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    const ssize_t n =
        recvfrom(sv.responder, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n <= 0) continue;
    const shim::StubReply r = shim::answer_stub_query(
        *sv.config, sv.dns, std::span<const std::uint8_t>(q, static_cast<std::size_t>(n)),
        std::span<std::uint8_t>(out));
    if (r.kind == shim::StubReply::Kind::answered && r.length > 0) {
      sendto(sv.responder, out, r.length, 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  }
}

// The program's socket `fd` (a duplicate), or -1.
int take_socket(pid_t pid, int fd) {
  const int pidfd = sys_pidfd_open(pid);
  const int sock = pidfd >= 0 ? sys_pidfd_getfd(pidfd, fd) : -1;
  if (pidfd >= 0) close(pidfd);
  return sock;
}

// What happens to a datagram for `dst` (a sockaddr from the program): 0 to send it here
// (direct), or the errno that refuses it. Datagrams through the proxy need UDP ASSOCIATE,
// which the supervisor does not do: they fail closed.
int datagram_verdict(Supervisor& sv, const shim::SocketFacts& facts, int sock,
                     const sockaddr_storage& dst, socklen_t len) {
  shim::Destination d;
  // As the kernel reads it: refused shapes are refused; AF_UNSPEC where it means "no address"
  // goes to the connected peer (checked when it was connected).
  const shim::AddressReading r = shim::read_address(
      facts, shim::AddressUse::send, reinterpret_cast<const sockaddr*>(&dst), len, d);
  if (r.kind == shim::AddressReading::Kind::refused) return r.error;
  if (r.kind == shim::AddressReading::Kind::unspecified) return 0;
  if (v6only(sock, r)) return ENETUNREACH;
  shim::Context ctx;
  if (sv.dns != nullptr && sv.dns->in_range(d.family, d.ip.data())) ctx.fake = true;
  const shim::Verdict v = shim::classify(*sv.config, shim::Operation::datagram, d, ctx);
  if (v.action == settings::Action::reject) return socks5::to_errno(make_error_code(v.refusal));
  if (v.action == settings::Action::direct || v.action == settings::Action::loopback) return 0;
  return ENETUNREACH;
}

constexpr std::size_t kMaxDatagram = 65536;

// sendto, sendmsg and sendmmsg with an address. Stream sockets (the address is ignored
// unless MSG_FASTOPEN) and sockets that are not internet ones go on as asked; a datagram to
// a direct destination is sent by the supervisor itself, on the program's socket, from a
// copy of the program's buffers (never CONTINUE with an address: it could change after the
// check); one that would need the proxy fails closed.
void on_send(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int sock = take_socket(pid, static_cast<int>(req.data.args[0]));
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return;
  }
  const shim::SocketFacts facts = facts_of(sock);
  const int type = facts.type;
  const bool inet = shim::is_inet(facts);
  const auto flags = static_cast<int>(req.data.nr == SYS_sendto
                                          ? req.data.args[3]
                                          : req.data.args[req.data.nr == SYS_sendmsg ? 2 : 3]);
  if (!inet || (type == SOCK_STREAM && (flags & MSG_FASTOPEN) == 0)) {
    close(sock);
    reply_continue(sv.listener, req.id);
    return;
  }
  if (type == SOCK_STREAM) {  // TCP Fast Open: a connect the supervisor would have to make
    close(sock);
    reply(sv.listener, req.id, EOPNOTSUPP);
    return;
  }
  // One message: (name, iovecs). sendto has one buffer; sendmsg one msghdr; sendmmsg several.
  auto send_one = [&](const msghdr& remote, std::uint64_t* sent) -> int {
    sockaddr_storage dst{};
    const socklen_t nlen = remote.msg_name == nullptr ? 0 : remote.msg_namelen;
    if (nlen > sizeof dst) return EINVAL;
    if (nlen > 0 && !read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_name), &dst, nlen))
      return EFAULT;
    if (nlen > 0) {
      if (const int e = datagram_verdict(sv, facts, sock, dst, nlen); e != 0) return e;
    }
    if (remote.msg_iovlen > 64) return EMSGSIZE;
    iovec iov[64];
    if (remote.msg_iovlen > 0 && !read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_iov),
                                              iov, remote.msg_iovlen * sizeof(iovec)))
      return EFAULT;
    std::vector<std::uint8_t> data;
    for (std::size_t i = 0; i < remote.msg_iovlen; ++i) {
      const std::size_t at = data.size();
      if (at + iov[i].iov_len > kMaxDatagram) return EMSGSIZE;
      data.resize(at + iov[i].iov_len);
      if (iov[i].iov_len > 0 && !read_memory(pid, reinterpret_cast<std::uint64_t>(iov[i].iov_base),
                                             data.data() + at, iov[i].iov_len))
        return EFAULT;
    }
    std::vector<std::uint8_t> control(remote.msg_control == nullptr ? 0 : remote.msg_controllen);
    if (control.size() > 4096) return EINVAL;
    if (!control.empty() && !read_memory(pid, reinterpret_cast<std::uint64_t>(remote.msg_control),
                                         control.data(), control.size()))
      return EFAULT;
    iovec one{data.data(), data.size()};
    msghdr m{};
    m.msg_name = nlen > 0 ? &dst : nullptr;
    m.msg_namelen = nlen;
    m.msg_iov = &one;
    m.msg_iovlen = 1;
    m.msg_control = control.empty() ? nullptr : control.data();
    m.msg_controllen = control.size();
    const ssize_t n = sendmsg(sock, &m, flags | MSG_NOSIGNAL);
    if (n < 0) return errno;
    *sent = static_cast<std::uint64_t>(n);
    return 0;
  };
  int e = 0;
  std::uint64_t val = 0;
  if (req.data.nr == SYS_sendto) {
    const auto size = static_cast<std::size_t>(req.data.args[2]);
    sockaddr_storage dst{};
    const auto nlen = static_cast<socklen_t>(req.data.args[5]);
    if (nlen > sizeof dst || !read_memory(pid, req.data.args[4], &dst, nlen)) {
      e = EFAULT;
    } else if ((e = datagram_verdict(sv, facts, sock, dst, nlen)) == 0) {
      std::vector<std::uint8_t> data(size > kMaxDatagram ? 0 : size);
      if (size > kMaxDatagram) {
        e = EMSGSIZE;
      } else if (!data.empty() && !read_memory(pid, req.data.args[1], data.data(), data.size())) {
        e = EFAULT;
      } else {
        const ssize_t n = sendto(sock, data.data(), data.size(), flags | MSG_NOSIGNAL,
                                 reinterpret_cast<sockaddr*>(&dst), nlen);
        if (n < 0) {
          e = errno;
        } else {
          val = static_cast<std::uint64_t>(n);
        }
      }
    }
  } else if (req.data.nr == SYS_sendmsg) {
    msghdr remote{};
    if (!read_memory(pid, req.data.args[1], &remote, sizeof remote)) {
      e = EFAULT;
    } else if (remote.msg_name == nullptr) {
      close(sock);
      reply_continue(sv.listener, req.id);  // a connected socket: its peer was checked then
      return;
    } else {
      e = send_one(remote, &val);
    }
  } else {  // sendmmsg
    const auto vlen = static_cast<std::size_t>(req.data.args[2] > 64 ? 64 : req.data.args[2]);
    std::vector<mmsghdr> msgs(vlen);
    if (vlen > 0 && !read_memory(pid, req.data.args[1], msgs.data(), vlen * sizeof(mmsghdr))) {
      e = EFAULT;
    } else {
      bool named = false;
      for (const auto& m : msgs) named = named || m.msg_hdr.msg_name != nullptr;
      if (!named) {
        close(sock);
        reply_continue(sv.listener, req.id);
        return;
      }
      std::size_t done = 0;
      for (; done < vlen; ++done) {
        std::uint64_t n = 0;
        const int err = send_one(msgs[done].msg_hdr, &n);
        if (err != 0) {
          if (done == 0) e = err;
          break;
        }
        const auto len = static_cast<unsigned>(n);
        write_memory(pid, req.data.args[1] + done * sizeof(mmsghdr) + offsetof(mmsghdr, msg_len),
                     &len, sizeof len);
      }
      if (e == 0) val = done;
    }
  }
  close(sock);
  reply(sv.listener, req.id, e, static_cast<long long>(val));
}

// getpeername(): the destination the program asked for, not the proxy.
void on_getpeername(Supervisor& sv, const seccomp_notif& req) {
  const pid_t pid = process_of(static_cast<pid_t>(req.pid));
  const int pidfd = sys_pidfd_open(pid);
  const int sock = pidfd >= 0 ? sys_pidfd_getfd(pidfd, static_cast<int>(req.data.args[0])) : -1;
  if (pidfd >= 0) close(pidfd);
  if (sock < 0) {
    reply(sv.listener, req.id, EBADF);
    return;
  }
  struct stat st {};
  std::pair<sockaddr_storage, socklen_t> peer{};
  bool known = false;
  if (fstat(sock, &st) == 0) {
    std::lock_guard<std::mutex> lock(sv.mu);
    auto it = sv.peers.find(st.st_ino);
    if (it != sv.peers.end()) {
      peer = it->second;
      known = true;
    }
  }
  if (!known) {
    sockaddr_storage ss{};
    socklen_t l = sizeof ss;
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&ss), &l) != 0) {
      const int e = errno;
      close(sock);
      reply(sv.listener, req.id, e);
      return;
    }
    peer = {ss, l};
  }
  close(sock);
  socklen_t room = 0;
  if (!read_memory(pid, req.data.args[2], &room, sizeof room)) {
    reply(sv.listener, req.id, EFAULT);
    return;
  }
  const socklen_t n = room < peer.second ? room : peer.second;
  if (!write_memory(pid, req.data.args[1], &peer.first, n) ||
      !write_memory(pid, req.data.args[2], &peer.second, sizeof peer.second)) {
    reply(sv.listener, req.id, EFAULT);
    return;
  }
  reply(sv.listener, req.id, 0);
}

// Receives notifications until the listener reports that no process is left; each is
// answered by a thread of its own, so handshakes run in parallel.
void serve(Supervisor& sv) {
  for (;;) {
    pollfd p{sv.listener, POLLIN, 0};
    if (poll(&p, 1, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if ((p.revents & POLLHUP) != 0 && (p.revents & POLLIN) == 0) return;
    seccomp_notif req;
    std::memset(&req, 0, sizeof req);  // NOTIF_RECV wants a zeroed buffer
    if (ioctl(sv.listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
      if (errno == EINTR || errno == ENOENT) continue;
      return;
    }
    std::thread([&sv, req] {
      if (req.data.nr == SYS_connect) {
        on_connect(sv, req);
      } else if (req.data.nr == SYS_sendto || req.data.nr == SYS_sendmsg ||
                 req.data.nr == SYS_sendmmsg) {
        on_send(sv, req);
      } else if (req.data.nr == SYS_getpeername) {
        on_getpeername(sv, req);
      } else {
        reply(sv.listener, req.id, ENOSYS);
      }
    }).detach();
  }
}

// The one line for a supervisor that cannot start: the kernel feature it lacks (`missing`:
// "FEATURE (Linux X.Y"), or what failed and why.
void say_cannot_start(int e, bool missing, const char* feature, const char* what) {
  if (missing) {
    utsname u{};
    uname(&u);
    std::fprintf(stderr,
                 "socksify: this kernel (%s) cannot run the supervisor: it needs %s or later; "
                 "use --mode preload)\n",
                 u.release, feature);
  } else {
    std::fprintf(stderr, "socksify: cannot %s: %s\n", what, std::strerror(e));
  }
}

}  // namespace

bool use_supervisor(const settings::Config& config, const std::vector<std::string>& command) {
  if (config.mode == settings::RunMode::supervisor) return true;
  if (config.mode == settings::RunMode::preload || command.empty()) return false;
  const std::string program = resolve_in_path(command.front());
  if (program.empty()) return false;
  const settings::Reach r = settings::program_reach(program.c_str());
  return r == settings::Reach::static_binary || r == settings::Reach::go_runtime;
}

int run_supervised(const LaunchRequest& request, const settings::Config& config) {
  const std::vector<std::string>& argv = request.command;
  if (config.gssapi && config.gssapi->level != socks5::GssLevel::clear) {
    // A protection layer wraps every octet: the program's own socket cannot carry it.
    std::fprintf(stderr,
                 "socksify: %s needs the supervisor (a static or Go program), which cannot "
                 "carry GSSAPI integrity or confidentiality: use --gssapi-protection clear, or "
                 "--mode preload\n",
                 argv.empty() ? "the program" : argv.front().c_str());
    return 125;
  }
  const std::string shim = find_shim();
  int to_parent[2], to_child[2];
  if (pipe2(to_parent, O_CLOEXEC) != 0 || pipe2(to_child, O_CLOEXEC) != 0) return 125;
  const pid_t child = fork();
  if (child < 0) return 125;
  if (child == 0) {
    int listener = -1;
    if (!install_filter(listener)) {
      const int e = errno;
      say_cannot_start(e, e == EINVAL || e == ENOSYS, "seccomp user notification (Linux 5.0",
                       "install the supervisor's filter");
      _exit(125);
    }
    // The supervisor takes the listener with pidfd_getfd (SCM_RIGHTS could wait on a
    // notification of its own), then this copy goes before exec.
    (void)!write(to_parent[1], &listener, sizeof listener);
    char ack;
    (void)!read(to_child[0], &ack, 1);
    close(listener);
    for (const auto& [name, s] : request.settings) setenv(name.c_str(), s.value.c_str(), 1);
    if (!shim.empty()) {
      setenv("LD_PRELOAD", preload_list(shim, std::getenv("LD_PRELOAD")).c_str(), 1);
    }
    // Every descendant is under the filter: the library in a dynamic one neither warns about
    // nor re-supervises a static program it starts.
    setenv("SOCKSIFY_SUPERVISED", "1", 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "socksify: %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(to_parent[1]);
  close(to_child[0]);
  int child_listener = -1;
  int take_errno = 0;
  // Never freed: the threads that answer notifications are detached, and one may still run
  // a dial (to a silent proxy, say) when the last process has gone and the wrapper exits. So
  // the supervisor and its own copy of the configuration outlive everything here.
  auto* owned = new Supervisor;
  Supervisor& sv = *owned;
  sv.owned_config = config;
  sv.config = &sv.owned_config;
  if (config.remote_dns) {
    sv.dns = shim::FakeDns::create(config.fake4, config.fake6);
    sv.responder = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto* a = reinterpret_cast<sockaddr_in*>(&sv.responder_addr);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv.responder_len = sizeof *a;
    if (sv.responder < 0 ||
        bind(sv.responder, reinterpret_cast<sockaddr*>(&sv.responder_addr), sv.responder_len) !=
            0 ||
        getsockname(sv.responder, reinterpret_cast<sockaddr*>(&sv.responder_addr),
                    &sv.responder_len) != 0) {
      std::fprintf(stderr, "socksify: cannot start the supervisor's DNS responder: %s\n",
                   std::strerror(errno));
      return 125;
    }
    std::thread(respond, std::ref(sv)).detach();
  }
  if (read(to_parent[0], &child_listener, sizeof child_listener) ==
      static_cast<ssize_t>(sizeof child_listener)) {
    const int pidfd = sys_pidfd_open(child);
    if (pidfd >= 0) {
      sv.listener = sys_pidfd_getfd(pidfd, child_listener);
      take_errno = errno;
      close(pidfd);
    }
  }
  (void)!write(to_child[1], "x", 1);
  close(to_parent[0]);
  close(to_child[1]);
  if (sv.listener < 0 && child_listener >= 0) {
    say_cannot_start(take_errno, take_errno == ENOSYS, "pidfd_getfd (Linux 5.6",
                     "take the supervisor's listener");
    kill(child, SIGKILL);
  }
  // Served until no process is left under the filter (the program's children included).
  std::thread server;
  if (sv.listener >= 0) server = std::thread(serve, std::ref(sv));
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (server.joinable()) server.join();
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}

}  // namespace socksify::tool
