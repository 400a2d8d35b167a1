// Fake DNS: ranges, reverse lookups, a million names, sharing with forked children.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "fake_dns.hpp"

using namespace socksify::core;
using socksify::settings::parse_cidr;

namespace {

// A table the test deletes when it is done (the library keeps its one for good).
std::unique_ptr<FakeDns> owned(FakeDns* dns) {
  return std::unique_ptr<FakeDns>(dns);
}

FakeDns* make() {
  static FakeDns* dns =
      FakeDns::create(*parse_cidr("198.18.0.0/15"), *parse_cidr("fd5f:636b:7366::/48"));
  return dns;
}

std::string text4(const std::uint8_t* a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, a, buf, sizeof buf);
  return buf;
}

}  // namespace

TEST_CASE("fake DNS: stable addresses in range, reverse lookup, case-insensitive", "[shim][dns]") {
  FakeDns* dns = make();
  REQUIRE(dns != nullptr);
  auto a = dns->lookup_or_add("Example.ORG.");
  auto b = dns->lookup_or_add("example.org");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->index == b->index);
  std::uint8_t v4[4], v6[16];
  dns->address4(*a, v4);
  dns->address6(*a, v6);
  CHECK(text4(v4).rfind("198.1", 0) == 0);
  CHECK(dns->in_range(AF_INET, v4));
  char name[256];
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "example.org");
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "example.org");
  // Addresses never handed out are not fake, even inside the range.
  std::uint8_t unused[4] = {198, 19, 255, 254};
  CHECK_FALSE(dns->name_of(AF_INET, unused, name, sizeof name));
  std::uint8_t outside[4] = {8, 8, 8, 8};
  CHECK_FALSE(dns->name_of(AF_INET, outside, name, sizeof name));
  CHECK_FALSE(dns->lookup_or_add(""));
  CHECK_FALSE(dns->lookup_or_add(std::string(256, 'a')));
  CHECK(dns->lookup_or_add(std::string(255, 'a')));
}

TEST_CASE("fake DNS: a million names, none of them ever changes meaning", "[shim][dns]") {
  FakeDns* dns = make();
  const std::uint32_t before = dns->size();
  FakeName first{}, last{};
  for (int i = 0; i < 1000000; ++i) {
    auto n = dns->lookup_or_add("host-" + std::to_string(i) + ".million.test");
    REQUIRE(n);
    if (i == 0) first = *n;
    last = *n;
  }
  CHECK(dns->size() == before + 1000000);
  CHECK(FakeDns::capacity() == 2097152u);
  CHECK(dns->capacity4() == 131070u);  // a /15 without its network and broadcast addresses
  char name[256];
  std::uint8_t v6[16], v4[4];
  // Every name keeps its IPv6 address; the first ones keep their IPv4 address too.
  dns->address6(first, v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "host-0.million.test");
  dns->address6(last, v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "host-999999.million.test");
  REQUIRE(first.has_v4());
  dns->address4(first, v4);
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "host-0.million.test");
  // The IPv4 range ran out long before the millionth name: it got none, and no IPv4 address
  // was handed out twice (the first name's address still means the first name).
  CHECK_FALSE(last.has_v4());
  auto again = dns->lookup_or_add("host-0.million.test");
  REQUIRE(again);
  CHECK(again->index == first.index);
  CHECK(again->v4 == first.v4);
  std::uint8_t high[4];
  FakeName top{0, dns->capacity4()};
  dns->address4(top, high);
  CHECK(text4(high) == "198.19.255.254");  // the last usable address of the /15
}

TEST_CASE("fake DNS: a forked child's names are seen by the parent", "[shim][dns]") {
  // A table of its own (kept for the life of the process, as the library keeps its table).
  static FakeDns* dns =
      FakeDns::create(*parse_cidr("198.18.0.0/15"), *parse_cidr("fd5f:636b:7366::/48"));
  REQUIRE(dns != nullptr);
  const std::uint32_t before = dns->size();
  int pipefd[2];
  REQUIRE(pipe(pipefd) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child adds the name and tells the parent the address it got: nothing more.
    std::uint8_t v4[4] = {};
    auto n = dns->lookup_or_add("made-in-child.test");
    if (n) dns->address4(*n, v4);
    const bool sent = write(pipefd[1], v4, sizeof v4) == static_cast<ssize_t>(sizeof v4);
    _exit(n && sent ? 0 : 1);
  }
  close(pipefd[1]);
  std::uint8_t v4[4] = {};
  const ssize_t got = read(pipefd[0], v4, sizeof v4);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got == static_cast<ssize_t>(sizeof v4));
  // The parent only reads: the name behind the child's address, and the table's size. With a
  // table private to each process, neither holds.
  CHECK(dns->size() == before + 1);
  char name[256] = {};
  REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "made-in-child.test");
}

TEST_CASE("fake DNS: a small IPv4 range runs out, then names are IPv6 only", "[shim][dns]") {
  static FakeDns* dns = FakeDns::create(*parse_cidr("198.18.7.0/24"), *parse_cidr("fd00:7::/48"));
  REQUIRE(dns != nullptr);
  CHECK(dns->capacity4() == 254u);
  std::vector<FakeName> names;
  for (int i = 0; i < 300; ++i) {
    std::string name = std::to_string(i);  // (built by appending: GCC 12 misreports "n" + ...)
    name.insert(0, 1, 'n');
    name.append(".small.test");
    auto n = dns->lookup_or_add(name);
    REQUIRE(n);
    names.push_back(*n);
  }
  CHECK(names[253].has_v4());
  CHECK_FALSE(names[254].has_v4());
  CHECK_FALSE(names[299].has_v4());
  // Each of the 254 IPv4 addresses still names the one name it was given.
  char name[256];
  for (int i = 0; i < 254; ++i) {
    std::uint8_t v4[4];
    dns->address4(names[static_cast<std::size_t>(i)], v4);
    REQUIRE(dns->name_of(AF_INET, v4, name, sizeof name));
    std::string want = std::to_string(i);
    want.insert(0, 1, 'n');
    want.append(".small.test");
    CHECK(std::string(name) == want);
  }
  std::uint8_t v6[16];
  dns->address6(names[299], v6);
  REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "n299.small.test");
}

namespace {

const FileCalls kLibc{::open, ::close, ::fstat};

// A private state directory for one test.
struct StateDir {
  std::string path;
  StateDir() {
    char t[] = "/tmp/socksify-fakedns-XXXXXX";
    REQUIRE(mkdtemp(t) != nullptr);
    path = t;
  }
  ~StateDir() {
    if (!path.empty()) (void)!system(("rm -rf " + path).c_str());
  }
};

}  // namespace

TEST_CASE("fake DNS: one table in a file for every process with the same ranges",
          "[shim][dns][shared]") {
  StateDir dir;
  const auto net4 = *parse_cidr("198.18.0.0/15");
  const auto net6 = *parse_cidr("fd5f:636b:7366::/48");
  // Two tables over one file: what two processes see (each maps it on its own).
  const auto a = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  const auto b = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  // Nothing is mapped, or made, before the first lookup.
  CHECK(a->where() == FakeDns::Where::unmapped);
  CHECK(a->in_range(AF_INET, reinterpret_cast<const std::uint8_t*>("\xc6\x12\x00\x01")));
  CHECK(a->where() == FakeDns::Where::unmapped);
  CHECK(access(a->path(), F_OK) != 0);
  const auto n = a->lookup_or_add("made-in-a.test");
  REQUIRE(n);
  CHECK(a->where() == FakeDns::Where::shared);
  struct stat st {};
  REQUIRE(stat(a->path(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_blocks * 512 < 1 << 20);  // sparse: a few pages, not the 200 MiB it spans
  // b sees a's name, by name and by address, without adding it; and a sees b's.
  const auto seen = b->lookup("made-in-a.test");
  REQUIRE(seen);
  CHECK(seen->index == n->index);
  std::uint8_t v4[4];
  a->address4(*n, v4);
  char name[256] = {};
  REQUIRE(b->name_of(AF_INET, v4, name, sizeof name));
  CHECK(std::string(name) == "made-in-a.test");
  const auto m = b->lookup_or_add("made-in-b.test");
  REQUIRE(m);
  std::uint8_t v6[16];
  b->address6(*m, v6);
  REQUIRE(a->name_of(AF_INET6, v6, name, sizeof name));
  CHECK(std::string(name) == "made-in-b.test");
  CHECK(a->size() == 2);
  // Other ranges: another file, another table.
  const auto c = owned(FakeDns::create(*parse_cidr("10.99.0.0/16"), net6, dir.path, &kLibc));
  REQUIRE(c != nullptr);
  CHECK_FALSE(c->lookup("made-in-a.test"));
  CHECK(c->where() == FakeDns::Where::shared);
  CHECK(std::string(c->path()) != a->path());
}

TEST_CASE("fake DNS: a shared file that is not private is refused for a table of one's own",
          "[shim][dns][shared]") {
  StateDir dir;
  const auto net4 = *parse_cidr("198.18.0.0/15");
  const auto net6 = *parse_cidr("fd5f:636b:7366::/48");
  const auto first = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  REQUIRE(first->lookup_or_add("planted.test"));
  REQUIRE(first->where() == FakeDns::Where::shared);
  // Readable by others: refused.
  REQUIRE(chmod(first->path(), 0644) == 0);
  const auto loose = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  CHECK_FALSE(loose->lookup("planted.test"));
  CHECK(loose->where() == FakeDns::Where::private_);
  CHECK(std::string(loose->why_private()) == "the shared table's mode is not 0600");
  // A symbolic link in its place: refused (O_NOFOLLOW), never followed.
  REQUIRE(chmod(first->path(), 0600) == 0);
  const std::string moved = std::string(first->path()) + ".real";
  REQUIRE(rename(first->path(), moved.c_str()) == 0);
  REQUIRE(symlink(moved.c_str(), first->path()) == 0);
  const auto linked = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  CHECK_FALSE(linked->lookup("planted.test"));
  CHECK(linked->where() == FakeDns::Where::private_);
  // A directory others may write to (another user's in /tmp, say): not used, even with a
  // good file in it, since the file could be swapped under the process.
  REQUIRE(unlink(first->path()) == 0);
  REQUIRE(rename(moved.c_str(), first->path()) == 0);
  REQUIRE(chmod(dir.path.c_str(), 0777) == 0);
  const auto open_dir = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  CHECK_FALSE(open_dir->lookup("planted.test"));
  CHECK(open_dir->where() == FakeDns::Where::private_);
  CHECK(std::string(open_dir->why_private()) ==
        "the state directory is not private (this user's, mode 0700)");
  REQUIRE(chmod(dir.path.c_str(), 0700) == 0);
  const auto good_again = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  CHECK(good_again->lookup("planted.test"));
  CHECK(good_again->where() == FakeDns::Where::shared);
  // No directory at all: this process's own table, and it still works.
  const auto none = owned(FakeDns::create(net4, net6, {}, &kLibc));
  REQUIRE(none->lookup_or_add("private.test"));
  CHECK(none->where() == FakeDns::Where::private_);
  CHECK(std::string(none->why_private()) == "no private runtime directory");
}

TEST_CASE("fake DNS: processes killed at any instant leave no torn entry and no lock held",
          "[shim][dns][shared]") {
  StateDir dir;
  const auto net4 = *parse_cidr("198.18.0.0/15");
  const auto net6 = *parse_cidr("fd5f:636b:7366::/48");
  const auto dns = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
  REQUIRE(dns->lookup_or_add("first.test"));
  // Writers that map the file afresh, as other processes do, each adding names as fast as
  // it can, killed after a random moment (bounded: 40 rounds, 20 s).
  int kills = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int round = 0;
       round < 40 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20); ++round) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const auto own = owned(FakeDns::create(net4, net6, dir.path, &kLibc));
      for (int i = 0; i < 200000; ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "r%d-%d.test", round, i);
        if (!own->lookup_or_add(name)) _exit(3);
      }
      _exit(0);
    }
    usleep(static_cast<useconds_t>(200 + (round * 7919) % 5000));  // fault injection, not sync
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++kills;
  }
  CHECK(kills > 0);
  // No lock is left held: a new name goes in at once.
  REQUIRE(dns->lookup_or_add("after-the-kills.test"));
  // Every entry is whole: its name maps back from its address, and every name that can be
  // found is the entry at its index. Entries a killed writer allocated but never linked may
  // exist (at most one per kill); nobody was given their addresses.
  // The writers were writing when they were killed: more names than kills (a plain build
  // adds thousands; ThreadSanitizer's about 20 a round).
  const std::uint32_t size = dns->size();
  CHECK(size > static_cast<std::uint32_t>(kills) + 2);
  int unlinked = 0;
  for (std::uint32_t i = 0; i < size; ++i) {
    std::uint8_t v6[16];
    dns->address6(FakeName{i, 0}, v6);
    char name[256] = {};
    REQUIRE(dns->name_of(AF_INET6, v6, name, sizeof name));
    const std::string n(name);
    const bool shaped = n == "first.test" || n == "after-the-kills.test" ||
                        (n.front() == 'r' && n.find(".test") != std::string::npos);
    if (!shaped) FAIL("a torn name at index " << i << ": '" << n << "'");
    const auto found = dns->lookup(n);
    if (!found) {
      ++unlinked;
    } else {
      CHECK(found->index == i);
    }
  }
  CHECK(unlinked <= kills);
}

TEST_CASE("fake DNS: threads adding and looking up at once (lookups take no lock)",
          "[shim][dns][shared]") {
  StateDir dir;
  const auto dns = owned(FakeDns::create(*parse_cidr("198.18.0.0/15"),
                                         *parse_cidr("fd5f:636b:7366::/48"), dir.path, &kLibc));
  constexpr int kThreads = 4, kNames = 5000;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kNames; ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "t%d-%d.test", t, i);
        const auto n = dns->lookup_or_add(name);
        if (!n) {
          ++wrong;
          continue;
        }
        // Another thread's name, added earlier or not yet: when found, it is whole.
        std::snprintf(name, sizeof name, "t%d-%d.test", (t + 1) % kThreads, i);
        if (const auto other = dns->lookup(name)) {
          std::uint8_t v6[16];
          dns->address6(*other, v6);
          char back[256] = {};
          if (!dns->name_of(AF_INET6, v6, back, sizeof back) || std::string(back) != name) {
            ++wrong;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(dns->size() == kThreads * kNames);
}
