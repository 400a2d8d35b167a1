#include "protected.hpp"

#include <dlfcn.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "log.hpp"
#include "real_libc.hpp"
#include "relay.hpp"
#include "runtime.hpp"
#include "socks5/gssapi.hpp"
#include "socks5/transport.hpp"

extern char** environ;

namespace socksify::shim {
namespace {

// The relay program: socksify-relay next to this library (the build tree, the install tree and
// the Debian package all keep them side by side).
std::string relay_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&relay_path), &info) == 0 || info.dli_fname == nullptr) {
    return {};
  }
  std::string path(info.dli_fname);
  const auto slash = path.rfind('/');
  path.resize(slash == std::string::npos ? 0 : slash + 1);
  return path + "socksify-relay";
}

struct SpawnArgs {
  const char* path;
  char* const* argv;
  char* const* envp;
  int fds[3];        // become 3, 4 and 5
  char* exec_stack;  // the top of the relay's first process's stack
  int (*clone_fn)(int (*)(void*), void*, int, void*, ...);  // the C library's own
  int exec_errno = 0;  // execve's error, seen by the intermediate process
};

// The two spawned processes share the program's memory (and the spawning thread's TLS)
// until execve, so they make system calls directly: no C library wrapper that a sanitizer or
// another preloaded library intercepts (a sanitizer's _exit runs its end-of-process work, in
// the program's memory), and no instrumentation.
#if defined(__clang__) || defined(__GNUC__)
#define SOCKSIFY_NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))
#else
#define SOCKSIFY_NO_SANITIZE
#endif

// The C library's own clone(), not one a preloaded library puts in front of it: a sanitizer's
// treats a CLONE_VM|CLONE_VFORK child as a fork and re-initialises its state there, in
// the program's memory (ThreadSanitizer then lost track of the other threads).
using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);
CloneFn libc_clone() {
  static const CloneFn fn = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* sym = libc != nullptr ? dlsym(libc, "clone") : nullptr;
    if (libc != nullptr) dlclose(libc);
    return sym != nullptr ? reinterpret_cast<CloneFn>(sym) : &clone;
  }();
  return fn;
}

[[noreturn]] SOCKSIFY_NO_SANITIZE void exit_now(int code) {
  for (;;) real().syscall(SYS_exit, code);
}

// Runs in the relay's first process, on its own stack, sharing the program's memory until
// execve: only descriptor moves and execve (its parent is suspended meanwhile).
SOCKSIFY_NO_SANITIZE int exec_relay(void* arg) {
  auto* a = static_cast<SpawnArgs*>(arg);
  long moved[3];
  for (int i = 0; i < 3; ++i) {
    // Above every target first, so no move overwrites a descriptor still to be moved.
    moved[i] = real().syscall(SYS_fcntl, a->fds[i], F_DUPFD, 10);
    if (moved[i] < 0) exit_now(126);
  }
  for (int i = 0; i < 3; ++i) {
    if (real().syscall(SYS_dup2, moved[i], relay::kProxyFd + i) < 0) exit_now(126);
  }
  real().syscall(SYS_execve, a->path, a->argv, a->envp);
  a->exec_errno = errno;
  exit_now(127);
}

// The program's child: an intermediate process that starts the relay and exits at once,
// without execve. An exec'd child of the program's would give it a SIGCHLD when it exits
// (execve sets a process's exit signal to SIGCHLD, whatever clone() asked for): a program
// with a SIGCHLD handler would see a child it never made (and could reap it before the
// library does); one whose other thread blocks SIGCHLD would see a spurious EINTR. The relay
// is the intermediate's child; orphaned at once, it belongs to init (or a subreaper).
SOCKSIFY_NO_SANITIZE int spawn_child(void* arg) {
  auto* a = static_cast<SpawnArgs*>(arg);
  if (a->clone_fn(exec_relay, a->exec_stack, CLONE_VM | CLONE_VFORK, a) < 0) exit_now(126);
  exit_now(a->exec_errno != 0 ? 127 : 0);
}

// Starts the relay program with `fds` as 3, 4, 5 (and `args` after its name) and waits for the
// intermediate process (spawn_child). clone() with no exit signal, and no execve in that child:
// the program gets no SIGCHLD for a child it never made, and its waitpid(-1) never reaps ours.
int spawn_relay(const std::string& path, const int (&fds)[3],
                std::initializer_list<const char*> extra = {}) {
  // The environment minus LD_PRELOAD: the relay is ours and needs no shim.
  std::size_t n = 0;
  while (environ != nullptr && environ[n] != nullptr) ++n;
  char** envp = new (std::nothrow) char*[n + 1];
  if (envp == nullptr) return ENOMEM;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::strncmp(environ[i], "LD_PRELOAD=", 11) != 0) envp[k++] = environ[i];
  }
  envp[k] = nullptr;
  char* argv[8] = {const_cast<char*>(path.c_str())};
  std::size_t argc = 1;
  for (const char* a : extra) {
    if (argc + 1 < std::size(argv)) argv[argc++] = const_cast<char*>(a);
  }
  argv[argc] = nullptr;
  // Two stacks: the intermediate's and the relay's first process's.
  constexpr std::size_t kStack = 64 * 1024;
  void* stack = mmap(nullptr, 2 * kStack, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    delete[] envp;
    return ENOMEM;
  }
  SpawnArgs args{
      path.c_str(), argv, envp, {fds[0], fds[1], fds[2]}, static_cast<char*>(stack) + 2 * kStack,
      libc_clone()};
  // Every signal blocked in both children (the mask is inherited): they share the program's
  // memory and start with copies of its handlers, so a handler of the program's (SIGCHLD
  // when the relay's first process exits under the intermediate) would run there and change
  // the program's state. The relay unblocks them after execve.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid =
      args.clone_fn(spawn_child, static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK, &args);
  const int spawn_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, 2 * kStack);
  delete[] envp;
  if (pid < 0) return spawn_errno;
  int status = 0;
  while (waitpid(pid, &status, __WALL) < 0) {
    if (errno != EINTR) return ECHILD;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ENOENT : EIO;
  }
  return 0;
}

// The hand-over's system calls: the real C library's, which the hooks do not see.
const relay::Calls& calls() noexcept {
  static const relay::Calls c{real().socket,  real().bind, real().listen,     real().getsockname,
                              real().connect, real().poll, real().getsockopt, real().sendmsg,
                              real().send,    real().recv, real().close};
  return c;
}

void close_all(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) real().close(fd);
  }
}

}  // namespace

bool dials_protected() noexcept {
  const auto& config = runtime().config;
  const bool layer = config.gssapi && config.gssapi->level != socks5::GssLevel::clear;
  for (const auto& p : config.proxies) {
    // A SOCKS5 proxy's GSSAPI protection layer (HTTP's Negotiate has none), a proxy on a
    // Unix socket, which the program's internet socket cannot connect to, or TLS toward an
    // https proxy, which only the relay speaks.
    if ((layer && p.is_socks5()) || !p.unix_path.empty() || socks5::needs_transport(p)) {
      return true;
    }
  }
  return false;
}

namespace {

// TLS toward https proxies, in a relay process (relay/tls.hpp): the program never loads a
// TLS library. The relay gets the proxy stream, reports on the dial's plaintext socket, and
// carries the dial's octets; hand_over() later gives it the program's connection.
class RelayTls final : public socks5::Transport {
 public:
  socks5::Result<socks5::TransportStart> start(int stream, const socks5::ProxyUri& proxy,
                                               socks5::Deadline deadline) noexcept override {
    int plain[2] = {-1, -1}, control[2] = {-1, -1};
    if (real().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, plain) != 0 ||
        real().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
      close_all({stream, plain[0], plain[1], control[0]});
      return socks5::fail(socks5::Errc::tls_unavailable);
    }
    const std::string path = relay_path();
    const std::string ms = std::to_string(deadline.poll_ms());
    const int fds[3] = {stream, plain[0], control[1]};
    const int err = spawn_relay(
        path, fds, {"tls", proxy.host.c_str(), runtime().config.proxy_cacert.c_str(), ms.c_str()});
    close_all({stream, plain[0], control[1]});
    if (err != 0) {
      log_line(LogLevel::error, "cannot start the relay %s: %s", path.c_str(), std::strerror(err));
      close_all({plain[1], control[0]});
      return socks5::fail(socks5::Errc::tls_unavailable);
    }
    return socks5::TransportStart{plain[1], control[0]};
  }
};

}  // namespace

socks5::Transport* relay_transport() noexcept {
  static RelayTls tls;  // no state: constant-initialised, nothing runs at load time
  return &tls;
}

int park_program(int fd, int family, Parked& parked, socks5::Deadline deadline) noexcept {
  return relay::park(fd, family, parked, deadline, calls());
}

// `protection` nullptr: the relay passes octets as they are (the dial's own socket reaches a
// proxy the program's socket cannot, a Unix socket's).
int relay_parked(int proxy, socks5::Protection* protection, socks5::Bytes rest, Parked& parked,
                 socks5::Deadline deadline) noexcept {
  const int listener = parked.listener;
  parked.listener = -1;
  relay::Setup setup;
  setup.rest = std::move(rest);
  setup.peer_port = parked.peer_port;
  if (protection == nullptr) {
    setup.kind = relay::Kind::plain;
  } else {
    auto* gss = dynamic_cast<socks5::GssProtection*>(protection);
    if (gss == nullptr) {
      close_all({proxy, listener});
      return EPROTO;
    }
    setup.level = gss->level();
    auto exported = gss->export_context();
    if (!exported) {
      log_line(LogLevel::error, "GSSAPI: cannot hand the security context to the relay: %s",
               socks5::gssapi_last_status().c_str());
      close_all({proxy, listener});
      return EPROTO;
    }
    setup.context = std::move(*exported);
  }
  const std::string path = relay_path();
  int control[2] = {-1, -1};
  int err = 0;
  if (real().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) err = errno;
  if (err == 0) {
    const int fds[3] = {proxy, listener, control[1]};
    err = spawn_relay(path, fds);
    if (err != 0) {
      log_line(LogLevel::error, "cannot start the relay %s: %s", path.c_str(), std::strerror(err));
    }
  }
  close_all({proxy, listener, control[1]});
  if (err == 0) {
    err = relay::send_setup(control[0], setup, deadline, calls());
    if (err != 0) log_line(LogLevel::error, "the relay %s did not start", path.c_str());
  }
  close_all({control[0]});
  // The context's keys are in the exported token: not left behind in freed memory.
  std::memset(setup.context.data(), 0, setup.context.size());
  return err == 0 ? 0 : ECONNABORTED;
}

int relay_stream(int fd, int family, int proxy, socks5::Protection& protection, socks5::Bytes rest,
                 socks5::Deadline deadline) noexcept {
  Parked parked;
  const int err = park_program(fd, family, parked, deadline);
  if (err != 0) {
    close_all({proxy});
    return ECONNABORTED;
  }
  return relay_parked(proxy, &protection, std::move(rest), parked, deadline);
}

int start_parked(socks5::Dial& dial, Parked& parked, socks5::Deadline deadline) noexcept {
  std::unique_ptr<socks5::Protection> protection = dial.take_protection();
  socks5::Bytes rest = dial.reader().take_rest();
  if (const int control = dial.release_transport_control(); control >= 0) {
    // The TLS relay is there already: it takes the listener and the dial's socket (whose
    // unread octets are the program's) and carries the program's connection.
    const int plain = dial.release_fd();
    relay::Setup setup;
    setup.kind = relay::Kind::tls;
    setup.peer_port = parked.peer_port;
    setup.rest = std::move(rest);
    const int err = relay::send_setup(control, setup, deadline, calls(), {parked.listener, plain});
    close_all({control, plain, parked.listener});
    parked.listener = -1;
    if (err != 0) log_line(LogLevel::error, "the TLS relay did not take the connection over");
    return err == 0 ? 0 : ECONNABORTED;
  }
  return relay_parked(dial.release_fd(), protection.get(), std::move(rest), parked, deadline);
}

int start_protected(int fd, int family, socks5::Dial& dial, socks5::Deadline deadline) noexcept {
  Parked parked;
  if (park_program(fd, family, parked, deadline) != 0) return ECONNABORTED;
  return start_parked(dial, parked, deadline);
}

}  // namespace socksify::shim
