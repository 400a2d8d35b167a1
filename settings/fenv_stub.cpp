// libstdc++'s floating-point std::from_chars (reached through the TOML parser) brackets its
// work with fegetround/fesetround, which live in libm. Loading libm into every socksified
// process for that costs a dozen system calls and relocations at start-up. The configuration
// has no floating-point settings, so rounding never matters here: these definitions (local to
// the shim through its version script) satisfy the references and never touch the FPU state
// of the host program. Linked as an object, not from an archive, so that it is there before
// the static libstdc++ is searched. <cfenv> is not included: its declarations carry default
// visibility.
namespace {
constexpr int kToNearest = 0;  // FE_TONEAREST on x86-64
}

extern "C" {
int fegetround() noexcept {
  return kToNearest;
}
int fesetround(int mode) noexcept {
  return mode == kToNearest ? 0 : 1;
}
}
