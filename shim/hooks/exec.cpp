// The exec family and posix_spawn: the environment the new program gets carries the proxied
// sockets it inherits (inherit.hpp). Nothing else changes, and nothing at all when there is
// nothing to pass. These may run in a vfork child: no allocation, no lock, stack only.
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstring>

#include "inherit.hpp"
#include "log.hpp"
#include "program.hpp"
#include "real_libc.hpp"
#include "runtime.hpp"

namespace socksify::shim {
namespace {

constexpr std::size_t kMaxEnv = 4096;

struct ExecEnv {
  char* vec[kMaxEnv + 2];
  char var[kInheritMax];
};

// `envp` with our variable in place of an old one; `envp` itself when there is nothing to
// pass (or no room, which an environment of 4096 variables is left as it is).
char* const* exec_env(char* const* envp, ExecEnv& e) noexcept {
  if (!inherit_variable(e.var, sizeof e.var)) return envp;
  std::size_t n = 0;
  for (char* const* p = envp; p != nullptr && *p != nullptr; ++p) {
    if (std::strncmp(*p, "SOCKSIFY_INHERIT=", 17) == 0) continue;
    if (n >= kMaxEnv) return envp;
    e.vec[n++] = *p;
  }
  e.vec[n++] = e.var;
  e.vec[n] = nullptr;
  return e.vec;
}

// Counts the arguments of execl-style calls (after `first`, up to the terminating null).
std::size_t count_args(va_list ap) {
  std::size_t n = 1;
  va_list copy;
  va_copy(copy, ap);
  while (va_arg(copy, char*) != nullptr) ++n;
  va_end(copy);
  return n;
}

bool truthy(const char* v) {
  return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0 ||
                          std::strcmp(v, "on") == 0 || std::strcmp(v, "yes") == 0);
}

// The program a search (execvp, posix_spawnp) would run, into `out` (PATH_MAX): the first
// executable candidate along PATH, as the C library's search finds it. False if none.
bool search_path(const char* file, char (&out)[PATH_MAX]) {
  if (std::strchr(file, '/') != nullptr) {
    if (std::strlen(file) >= sizeof out) return false;
    std::strcpy(out, file);
    return true;
  }
  const char* path = getenv("PATH");
  if (path == nullptr) path = "/bin:/usr/bin";
  const std::size_t flen = std::strlen(file);
  for (const char* p = path;; ++p) {
    const char* end = std::strchr(p, ':');
    const std::size_t dlen = end != nullptr ? static_cast<std::size_t>(end - p) : std::strlen(p);
    if (dlen + 1 + flen < sizeof out) {
      std::memcpy(out, dlen == 0 ? "." : p, dlen == 0 ? 1 : dlen);
      const std::size_t d = dlen == 0 ? 1 : dlen;
      out[d] = '/';
      std::memcpy(out + d + 1, file, flen + 1);
      if (access(out, X_OK) == 0) return true;
    }
    if (end == nullptr) return false;
    p = end;
  }
}

// A socksified program starting one the library cannot reach: a static or Go program (whose
// connections would silently go direct) gets a warning, and under --strict
// (SOCKSIFY_STRICT) every unreachable kind is refused with EACCES. The settings come from
// the runtime if it is up, else from the environment (no initialisation here: this may run
// in a vfork child).
bool exec_allowed(const char* path);

// What exec does with a program.
enum class ExecWay : std::uint8_t { as_asked, refused, supervised };

// The wrapper to run a static or Go program under its seccomp supervisor, or null: known when
// the wrapper started this program (SOCKSIFY_WRAPPER), unless the mode is "preload", or this
// process is supervised already (SOCKSIFY_SUPERVISED: the filter covers its children).
const char* supervising_wrapper(const Runtime* rt) {
  if (getenv("SOCKSIFY_SUPERVISED") != nullptr) return nullptr;
  const char* wrapper = getenv("SOCKSIFY_WRAPPER");
  if (wrapper == nullptr || wrapper[0] != '/') return nullptr;
  if (rt != nullptr) {
    if (rt->config.mode == settings::RunMode::preload) return nullptr;
  } else if (const char* m = getenv("SOCKSIFY_MODE");
             m != nullptr && std::strcmp(m, "preload") == 0) {
    return nullptr;
  }
  return wrapper;
}

// The value of the variable `name_eq` ("NAME=") in `envp`, or null.
const char* env_value(char* const* envp, const char* name_eq) {
  const std::size_t n = std::strlen(name_eq);
  for (char* const* p = envp; p != nullptr && *p != nullptr; ++p) {
    if (std::strncmp(*p, name_eq, n) == 0) return *p + n;
  }
  return nullptr;
}

// `socksify off` in the shell this runs in (a shell restarted with the library by `socksify
// env`): the new program's environment says so and no longer preloads the library. It starts
// as asked, static or not, without a word. (Both conditions: a program that only clears its
// environment turns nothing off.)
bool switched_off(char* const* envp) {
  const char* off = env_value(envp, "SOCKSIFY_OFF=");
  if (off == nullptr || std::strcmp(off, "1") != 0) return false;
  const char* preload = env_value(envp, "LD_PRELOAD=");
  return preload == nullptr || std::strstr(preload, "libsocksify.so") == nullptr;
}

ExecWay exec_way(const char* path, char* const* envp) {
  if (switched_off(envp)) return ExecWay::as_asked;
  const auto* rt = runtime_if_ready();
  const settings::Reach r = settings::program_reach(path);
  if (r == settings::Reach::preloadable) return ExecWay::as_asked;
  const bool own_calls = r == settings::Reach::static_binary || r == settings::Reach::go_runtime;
  if (getenv("SOCKSIFY_SUPERVISED") != nullptr && own_calls) return ExecWay::as_asked;
  if (own_calls && supervising_wrapper(rt) != nullptr) return ExecWay::supervised;
  return exec_allowed(path) ? ExecWay::as_asked : ExecWay::refused;
}

// argv for the wrapper running `path` under the supervisor: wrapper --mode supervisor path
// argv[1]... (in `out`, room for the count of argv + 4; no allocation: this may be a vfork
// child).
void supervised_argv(const char* wrapper, const char* path, char* const argv[], char** out) {
  std::size_t k = 0;
  out[k++] = const_cast<char*>(wrapper);
  out[k++] = const_cast<char*>("--mode");
  out[k++] = const_cast<char*>("supervisor");
  out[k++] = const_cast<char*>(path);
  for (std::size_t i = 1; argv != nullptr && argv[0] != nullptr && argv[i] != nullptr; ++i) {
    out[k++] = argv[i];
  }
  out[k] = nullptr;
}

std::size_t arg_count(char* const argv[]) {
  std::size_t n = 0;
  while (argv != nullptr && argv[n] != nullptr) ++n;
  return n;
}

bool exec_allowed(const char* path) {
  const auto* rt = runtime_if_ready();
  const bool strict = rt != nullptr ? rt->config.strict : truthy(getenv("SOCKSIFY_STRICT"));
  bool quiet = false;
  if (rt != nullptr) {
    quiet = rt->config.log_level == settings::LogLevel::quiet;
  } else if (const char* l = getenv("SOCKSIFY_LOG")) {
    quiet = std::strcmp(l, "quiet") == 0 || std::strcmp(l, "0") == 0;
  }
  const settings::Reach r = settings::program_reach(path);
  if (r == settings::Reach::preloadable) return true;
  log_capture_stderr();  // (if nothing has yet: one fstat)
  if (strict) {
    log_error("refusing to run %s (--strict, SOCKSIFY_STRICT): it %s", path,
              settings::reach_text(r));
    errno = EACCES;
    return false;
  }
  const bool silent_direct =
      r == settings::Reach::static_binary || r == settings::Reach::go_runtime;
  if (silent_direct && !quiet) log_error("warning: %s %s", path, settings::reach_text(r));
  return true;
}

// The hooks' work, by the real function each ends in: the forwarding hooks (execv, execl...)
// call these, never another hook by name.
int exec_path(const char* path, char* const argv[], char* const envp[]) {
  const ExecWay way = exec_way(path, envp);
  if (way == ExecWay::refused) return -1;
  ExecEnv e;
  if (way == ExecWay::supervised) {
    char** wargv = static_cast<char**>(__builtin_alloca((arg_count(argv) + 5) * sizeof(char*)));
    const char* wrapper = supervising_wrapper(runtime_if_ready());
    supervised_argv(wrapper, path, argv, wargv);
    return real().execve(wrapper, wargv, exec_env(envp, e));
  }
  return real().execve(path, argv, exec_env(envp, e));
}

int spawn_supervised(pid_t* pid, const char* path, const posix_spawn_file_actions_t* actions,
                     const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  char** wargv = static_cast<char**>(__builtin_alloca((arg_count(argv) + 5) * sizeof(char*)));
  const char* wrapper = supervising_wrapper(runtime_if_ready());
  supervised_argv(wrapper, path, argv, wargv);
  ExecEnv e;
  return real().posix_spawn(pid, wrapper, actions, attr, wargv, exec_env(envp, e));
}

int exec_search(const char* file, char* const argv[], char* const envp[]) {
  char found[PATH_MAX];
  if (search_path(file, found)) {
    const ExecWay way = exec_way(found, envp);
    if (way == ExecWay::refused) return -1;
    if (way == ExecWay::supervised) return exec_path(found, argv, envp);
  }
  ExecEnv e;
  return real().execvpe(file, argv, exec_env(envp, e));
}

}  // namespace
}  // namespace socksify::shim

namespace sh = socksify::shim;
using socksify::shim::real;

// Gathers execl's arguments into `argv` (room for n + 1 pointers, on the caller's stack).
#define SOCKSIFY_GATHER_ARGS(first, ap, argv, n)                                \
  std::size_t n = sh::count_args(ap);                                           \
  char** argv = static_cast<char**>(__builtin_alloca((n + 1) * sizeof(char*))); \
  argv[0] = const_cast<char*>(first);                                           \
  for (std::size_t i_ = 1; i_ < n; ++i_) argv[i_] = va_arg(ap, char*);          \
  argv[n] = nullptr;                                                            \
  (void)va_arg(ap, char*)

extern "C" {

SOCKSIFY_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  return sh::exec_path(path, argv, envp);
}

SOCKSIFY_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  return sh::exec_search(file, argv, envp);
}

SOCKSIFY_EXPORT int execv(const char* path, char* const argv[]) {
  return sh::exec_path(path, argv, environ);
}

SOCKSIFY_EXPORT int execvp(const char* file, char* const argv[]) {
  return sh::exec_search(file, argv, environ);
}

SOCKSIFY_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
  sh::ExecEnv e;
  return real().fexecve(fd, argv, sh::exec_env(envp, e));
}

SOCKSIFY_EXPORT int execveat(int dirfd, const char* path, char* const argv[], char* const envp[],
                             int flags) {
  if (real().execveat == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  sh::ExecEnv e;
  return real().execveat(dirfd, path, argv, sh::exec_env(envp, e), flags);
}

SOCKSIFY_EXPORT int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  SOCKSIFY_GATHER_ARGS(arg, ap, argv, n);
  va_end(ap);
  return sh::exec_path(path, argv, environ);
}

SOCKSIFY_EXPORT int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  SOCKSIFY_GATHER_ARGS(arg, ap, argv, n);
  va_end(ap);
  return sh::exec_search(file, argv, environ);
}

SOCKSIFY_EXPORT int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  SOCKSIFY_GATHER_ARGS(arg, ap, argv, n);
  char* const* envp = va_arg(ap, char* const*);
  va_end(ap);
  return sh::exec_path(path, argv, envp);
}

SOCKSIFY_EXPORT int posix_spawn(pid_t* pid, const char* path,
                                const posix_spawn_file_actions_t* actions,
                                const posix_spawnattr_t* attr, char* const argv[],
                                char* const envp[]) {
  const sh::ExecWay way = sh::exec_way(path, envp);
  if (way == sh::ExecWay::refused) return EACCES;
  sh::ExecEnv e;
  if (way == sh::ExecWay::supervised) {
    return sh::spawn_supervised(pid, path, actions, attr, argv, envp);
  }
  return real().posix_spawn(pid, path, actions, attr, argv, sh::exec_env(envp, e));
}

SOCKSIFY_EXPORT int posix_spawnp(pid_t* pid, const char* file,
                                 const posix_spawn_file_actions_t* actions,
                                 const posix_spawnattr_t* attr, char* const argv[],
                                 char* const envp[]) {
  char found[PATH_MAX];
  if (sh::search_path(file, found)) {
    const sh::ExecWay way = sh::exec_way(found, envp);
    if (way == sh::ExecWay::refused) return EACCES;
    if (way == sh::ExecWay::supervised) {
      return sh::spawn_supervised(pid, found, actions, attr, argv, envp);
    }
  }
  sh::ExecEnv e;
  return real().posix_spawnp(pid, file, actions, attr, argv, sh::exec_env(envp, e));
}

}  // extern "C"
