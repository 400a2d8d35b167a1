#include "program.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

namespace socksify::settings {
namespace {

// What the ELF headers say about reaching a program with LD_PRELOAD.
struct ElfFacts {
  bool is_static = false;  // no PT_INTERP: no dynamic loader, so no LD_PRELOAD
  bool is_go = false;      // a Go build-ID note: Go's runtime makes raw socket system calls
};

// True if the note area `notes` holds Go's build-ID note (owner "Go", type 4,
// NT_GO_BUILD_ID).
bool has_go_note(const unsigned char* notes, std::size_t len) {
  std::size_t off = 0;
  while (off + 12 <= len) {
    std::uint32_t namesz = 0, descsz = 0, type = 0;
    std::memcpy(&namesz, notes + off, 4);
    std::memcpy(&descsz, notes + off + 4, 4);
    std::memcpy(&type, notes + off + 8, 4);
    const std::size_t name_at = off + 12;
    const std::size_t next = name_at + ((std::size_t{namesz} + 3) & ~std::size_t{3}) +
                             ((std::size_t{descsz} + 3) & ~std::size_t{3});
    if (next > len || next <= off) return false;
    // Go's linker writes the owner as "Go\0\0" (namesz 4); accept the usual "Go\0" too.
    if (type == 4 && (namesz == 3 || namesz == 4) && std::memcmp(notes + name_at, "Go", 3) == 0) {
      return true;
    }
    off = next;
  }
  return false;
}

// One open and (usually) one read: the ELF header, the program headers and the notes sit at
// the front of the file.
ElfFacts inspect_elf(const char* path) {
  ElfFacts facts;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return facts;
  unsigned char head[4096];
  const ssize_t got = pread(fd, head, sizeof head, 0);
  auto read_at = [&](void* out, std::size_t len, std::uint64_t off) {
    if (got > 0 && off + len <= static_cast<std::uint64_t>(got)) {
      std::memcpy(out, head + off, len);
      return true;
    }
    return pread(fd, out, len, static_cast<off_t>(off)) == static_cast<ssize_t>(len);
  };
  Elf64_Ehdr eh{};
  // Not ELF64 (a script, say) is neither: its interpreter is what runs.
  if (read_at(&eh, sizeof eh, 0) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64 && (eh.e_type == ET_EXEC || eh.e_type == ET_DYN) &&
      eh.e_phnum < 256) {
    bool interp = false;
    bool complete = true;
    for (int i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph{};
      if (!read_at(&ph, sizeof ph, eh.e_phoff + static_cast<std::uint64_t>(i) * eh.e_phentsize)) {
        complete = false;
        break;
      }
      if (ph.p_type == PT_INTERP) interp = true;
      if (ph.p_type == PT_NOTE && !facts.is_go && ph.p_filesz <= 4096) {
        unsigned char notes[4096];
        const auto len = static_cast<std::size_t>(ph.p_filesz);
        if (read_at(notes, len, ph.p_offset)) facts.is_go = has_go_note(notes, len);
      }
    }
    facts.is_static = complete && !interp;
  }
  close(fd);
  return facts;
}

}  // namespace

Reach program_reach(const char* path) noexcept {
  struct stat st {};
  if (path == nullptr || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return Reach::preloadable;
  const ElfFacts elf = inspect_elf(path);
  if (elf.is_static) return Reach::static_binary;
  if (elf.is_go) return Reach::go_runtime;
  // The dynamic loader ignores LD_PRELOAD in secure-execution mode.
  if ((st.st_mode & S_ISUID) != 0 && st.st_uid != getuid()) return Reach::setuid;
  if ((st.st_mode & S_ISGID) != 0 && st.st_gid != getgid()) return Reach::setgid;
  if (getxattr(path, "security.capability", nullptr, 0) > 0) return Reach::capabilities;
  return Reach::preloadable;
}

const char* reach_text(Reach r) noexcept {
  switch (r) {
    case Reach::preloadable: return "";
    case Reach::static_binary:
      return "is statically linked (Go, musl-static...): the preloaded library cannot see its "
             "connections, which will NOT go through the proxy";
    case Reach::go_runtime:
      return "is a Go program: Go's runtime makes its socket system calls itself, not through "
             "the C library, so its connections will NOT go through the proxy";
    case Reach::setuid:
      return "is setuid: the loader ignores LD_PRELOAD for it; its connections will NOT go "
             "through the proxy";
    case Reach::setgid:
      return "is setgid: the loader ignores LD_PRELOAD for it; its connections will NOT go "
             "through the proxy";
    case Reach::capabilities:
      return "has file capabilities (setcap): the loader ignores LD_PRELOAD for it; its "
             "connections will NOT go through the proxy";
  }
  return "";
}

}  // namespace socksify::settings
