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
#include "real_libc.hpp"

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

// The hooks' work, by the real function each ends in: the forwarding hooks (execv, execl...)
// call these, never another hook by name.
int exec_path(const char* path, char* const argv[], char* const envp[]) {
  ExecEnv e;
  return real().execve(path, argv, exec_env(envp, e));
}

int exec_search(const char* file, char* const argv[], char* const envp[]) {
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
  sh::ExecEnv e;
  return real().posix_spawn(pid, path, actions, attr, argv, sh::exec_env(envp, e));
}

SOCKSIFY_EXPORT int posix_spawnp(pid_t* pid, const char* file,
                                 const posix_spawn_file_actions_t* actions,
                                 const posix_spawnattr_t* attr, char* const argv[],
                                 char* const envp[]) {
  sh::ExecEnv e;
  return real().posix_spawnp(pid, file, actions, attr, argv, sh::exec_env(envp, e));
}

}  // extern "C"
