// The handler for a call to a pure virtual function. The C++ runtime's own definition is only
// referenced weakly by our vtables, so the static libstdc++ never supplies it, and every vtable
// slot would need a symbol lookup by the dynamic loader at start-up (41 of them). Defined here,
// local to the shim (version script), the slots are resolved when the library is linked.
#include <unistd.h>

#include "real_libc.hpp"

extern "C" [[noreturn]] void __cxa_pure_virtual() {
  static const char msg[] = "socksify: pure virtual function called\n";
  (void)!socksify::shim::real().write(2, msg, sizeof msg - 1);
  _exit(134);
}
