// The supervisor's seccomp filter: see supervisor_filter.hpp.
#include "supervisor_filter.hpp"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace socksify::tool {
namespace {

int sys_seccomp(unsigned op, unsigned flags, void* args) {
  return static_cast<int>(syscall(SYS_seccomp, op, flags, args));
}

// A classic BPF program with named jump targets, resolved when it is done.
class Bpf {
 public:
  enum Label : int {
    kNext = -1,  // the next instruction
    kX86,
    kAllow,
    kNotify,
    kArg4,
    kEnosys,
    kEperm,
    kEnetunreach,
    kLabels
  };
  void load(std::uint32_t offset) { code_.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
  void ret(std::uint32_t value) { code_.push_back(BPF_STMT(BPF_RET | BPF_K, value)); }
  // if (A op k) goto jt else goto jf.
  void jump(std::uint16_t op, std::uint32_t k, Label jt, Label jf = kNext) {
    jumps_.push_back({code_.size(), jt, jf});
    code_.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
  }
  // if (A == each of `values`) goto `target`.
  template <std::size_t N>
  void any_of(const std::array<std::uint32_t, N>& values, Label target) {
    for (const std::uint32_t v : values) jump(BPF_JEQ, v, target);
  }
  void label(Label l) { at_[static_cast<std::size_t>(l)] = code_.size(); }
  std::vector<sock_filter> done() {
    for (const Jump& j : jumps_) {
      code_[j.at].jt = offset(j.at, j.jt);
      code_[j.at].jf = offset(j.at, j.jf);
    }
    return code_;
  }

 private:
  struct Jump {
    std::size_t at;
    Label jt, jf;
  };
  std::uint8_t offset(std::size_t from, Label to) const {
    return to == kNext ? 0
                       : static_cast<std::uint8_t>(at_[static_cast<std::size_t>(to)] - from - 1);
  }
  std::vector<sock_filter> code_;
  std::vector<Jump> jumps_;
  std::array<std::size_t, kLabels> at_{};
};

// The filter: connect, getpeername, the sends that carry an address (sendmsg and sendmmsg
// always: the address is in memory) and the receives that report a source to the
// supervisor; io_uring_setup refused (it would bypass the filter); everything else allowed.
// Only the x86-64 ABI: x32 numbers get ENOSYS, i386 network calls ENETUNREACH (the supervisor
// reads no 32-bit structures). Built before the fork (the child only installs it).
//
// The program waits for the supervisor as for the kernel: a signal interrupts the wait (EINTR,
// or a restart with SA_RESTART, which the supervisor joins to the call under way), and the
// work goes on behind it as the kernel's connect goes on after EINTR.
}  // namespace

std::vector<sock_filter> filter_program() {
  constexpr unsigned kArchOffset = offsetof(seccomp_data, arch);
  constexpr unsigned kNrOffset = offsetof(seccomp_data, nr);
  constexpr unsigned kArg4Low = offsetof(seccomp_data, args) + 4 * sizeof(std::uint64_t);
  // i386 (a 32-bit program, or int 0x80): socketcall 102, sendmmsg 345, connect 362, sendto
  // 369, sendmsg 370, io_uring_setup 425 refused; the rest goes on.
  constexpr std::array<std::uint32_t, 6> kI386Refused = {102, 345, 362, 369, 370, 425};
  // x86-64: always to the supervisor.
  constexpr std::array<std::uint32_t, 6> kNotified = {SYS_connect,  SYS_getpeername, SYS_sendmsg,
                                                      SYS_sendmmsg, SYS_recvmsg,     SYS_recvmmsg};
  // x86-64: to the supervisor when their address argument is not null: a send to an address
  // (send() is sendto without one) and a receive that reports the source (recv() is
  // recvfrom without one). A register cannot change after the check.
  constexpr std::array<std::uint32_t, 2> kWithAddress = {SYS_sendto, SYS_recvfrom};
  Bpf bpf;
  bpf.load(kArchOffset);
  bpf.jump(BPF_JEQ, AUDIT_ARCH_X86_64, Bpf::kX86);
  bpf.jump(BPF_JEQ, AUDIT_ARCH_I386, Bpf::kNext, Bpf::kEnosys);  // x32 and anything else
  bpf.load(kNrOffset);
  bpf.any_of(kI386Refused, Bpf::kEnetunreach);
  bpf.ret(SECCOMP_RET_ALLOW);
  bpf.label(Bpf::kX86);
  bpf.load(kNrOffset);
  bpf.jump(BPF_JGE, 0x40000000, Bpf::kEnosys);  // x32 numbers
  bpf.any_of(kNotified, Bpf::kNotify);
  bpf.jump(BPF_JEQ, SYS_io_uring_setup, Bpf::kEperm);
  bpf.any_of(kWithAddress, Bpf::kArg4);
  bpf.ret(SECCOMP_RET_ALLOW);
  bpf.label(Bpf::kArg4);  // args[4] != 0, in two 32-bit halves
  bpf.load(kArg4Low);
  bpf.jump(BPF_JEQ, 0, Bpf::kNext, Bpf::kNotify);
  bpf.load(kArg4Low + 4);
  bpf.jump(BPF_JEQ, 0, Bpf::kAllow, Bpf::kNotify);
  bpf.label(Bpf::kNotify);
  bpf.ret(SECCOMP_RET_USER_NOTIF);
  bpf.label(Bpf::kAllow);
  bpf.ret(SECCOMP_RET_ALLOW);
  bpf.label(Bpf::kEperm);
  bpf.ret(SECCOMP_RET_ERRNO | EPERM);  // io_uring would bypass the filter
  bpf.label(Bpf::kEnosys);
  bpf.ret(SECCOMP_RET_ERRNO | ENOSYS);
  bpf.label(Bpf::kEnetunreach);
  bpf.ret(SECCOMP_RET_ERRNO | ENETUNREACH);
  return bpf.done();
}

bool install_filter(std::vector<sock_filter>& code, int& listener) {
  sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  listener = sys_seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  return listener >= 0;
}

}  // namespace socksify::tool
