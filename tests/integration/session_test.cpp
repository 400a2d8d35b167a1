// A whole shell session through the proxy: `eval "$(socksify ... env)"` in interactive bash,
// zsh and dash on a pseudo-terminal (script(1)), in the lab's client namespace. The shell
// restarts itself with the library, so what it starts itself is reached too: a static program
// and a pure Go program (under the supervisor) and a dynamic one (preloaded). Against a dead
// proxy each fails with the line; against danted each goes through (the target is reachable
// only through the proxy). `socksify off` undoes it: a static program then goes direct,
// without a word.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

// Runs `lines`, then exit, in an interactive SHELL on a pseudo-terminal in the client
// namespace, with a home of empty rc files; returns what the terminal showed.
std::string in_shell(const std::string& shell, const std::vector<std::string>& lines) {
  const std::string home = lab().dir() + "/home-" + shell;
  lab().proxy_side("mkdir -p " + home + " && : > " + home + "/.zshrc && : > " + home + "/.bashrc");
  std::string input;
  for (const auto& l : lines) input += l + "\n";
  input += "exit\n";
  write_file(home + "/input", input);
  std::string out;
  lab().client("cd " + home + " && HOME=" + home + " TERM=dumb script -qfec \"" + shell +
                   " -i\" /dev/null < input",
               &out);
  return out;
}

// The commands: a static program, a pure Go one and a dynamic one, each followed by its exit
// status as NAME=STATUS.
std::vector<std::string> programs(const std::string& go) {
  return {SOCKSIFY_STATIC_PROBE " connect target.lab 7000 block; echo static=$?",
          go + " target.lab:7000; echo go=$?",
          probe() + " connect target.lab 7000 block; echo dynamic=$?"};
}

}  // namespace

TEST_CASE("a socksified shell reaches static, Go and dynamic programs, and off undoes it",
          "[shim][lab][session]") {
  require_program("script", "bsdutils");
  require_program("zsh", "zsh");
  require_program("dash", "dash");
  const std::string go = go_build("dial", false);
  const std::string env = "eval \"$(" + lab().socksify() + " -x ";
  for (const std::string shell : {"bash", "zsh", "dash"}) {
    INFO(shell);
    // A dead proxy: each fails, with the line.
    std::vector<std::string> dead{env + "socks5h://192.0.2.1:1 env)\""};
    for (const auto& p : programs(go)) dead.push_back(p);
    const std::string d = in_shell(shell, dead);
    INFO(d);
    // (At least one line each: Go tries each address the name has.)
    CHECK(count_of(d, "failed: proxy socks5h://192.0.2.1:1 unreachable") >= 3);
    CHECK(count_of(d, "connect: errno=ECONNREFUSED") == 2);
    CHECK_THAT(d, Catch::Contains("dial failed"));
    CHECK_THAT(d, Catch::Contains("static=1"));
    CHECK_THAT(d, Catch::Contains("go=1"));
    CHECK_THAT(d, Catch::Contains("dynamic=1"));
    CHECK_THAT(d, !Catch::Contains("warning"));
    // danted: each goes through (only the proxy side reaches the target).
    const std::size_t before = count_of(lab().server_log(), "echo 198.51.100.1");
    std::vector<std::string> live{env + kDanted + " env)\""};
    for (const auto& p : programs(go)) live.push_back(p);
    const std::string l = in_shell(shell, live);
    INFO(l);
    CHECK_THAT(l, Catch::Contains("static=0"));
    CHECK_THAT(l, Catch::Contains("go=0"));
    CHECK_THAT(l, Catch::Contains("dynamic=0"));
    CHECK_THAT(l, Catch::Contains("echo hello from go"));
    CHECK(wait_for_count([] { return lab().server_log(); }, "echo 198.51.100.1", before + 3) >=
          before + 3);
    // Off: a static program goes direct (to the proxy host, which the client side reaches),
    // with no warning and no line.
    const std::string o =
        in_shell(shell, {env + kDanted + " env)\"", "eval \"$(" + lab().socksify() + " off)\"",
                         SOCKSIFY_STATIC_PROBE " connect 192.0.2.1 1080 block; echo off=$?"});
    INFO(o);
    CHECK_THAT(o, Catch::Contains("peer 192.0.2.1 1080"));
    CHECK_THAT(o, !Catch::Contains("socksify["));
    CHECK_THAT(o, !Catch::Contains("warning"));
  }
}

TEST_CASE(
    "a socksified shell with --strict refuses a setuid program with its line, and still "
    "reaches a static one",
    "[shim][lab][session]") {
  // As the test user (for root a setuid-root program keeps LD_PRELOAD): a setuid-root copy of
  // the probe cannot be preloaded, so under --strict the shell's own execve of it is refused.
  require_program("script", "bsdutils");
  ensure_test_user();
  static TempDir dir;  // the lab directory is root's alone
  chmod(dir.path().c_str(), 0755);
  const std::string home = dir.file("home");
  const std::string suid = dir.file("suid-probe");
  run_ok("mkdir -p " + home + " && : > " + home + "/.bashrc && chown -R " + kTestUser + ": " +
         home + " && cp " + probe() + " " + suid + " && chmod 4755 " + suid);
  write_file(home + "/input",
             "eval \"$(" + lab().socksify() + " --strict -x " + kDanted + " env)\"\n" + suid +
                 " connect target.lab 7000 block; echo suid=$?\n" SOCKSIFY_STATIC_PROBE
                 " connect target.lab 7000 block; echo static=$?\nexit\n");
  chmod((home + "/input").c_str(), 0644);
  std::string out;
  lab().client("cd " + home + " && setpriv --reuid=" + kTestUser + " --regid=" + kTestUser +
                   " --clear-groups env HOME=" + home +
                   " TERM=dumb script -qfec \"bash -i\" /dev/null < input",
               &out);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("refusing to run " + suid +
                                  " (--strict, SOCKSIFY_STRICT): it is setuid"));
  CHECK_THAT(out, Catch::Contains("suid=126"));
  CHECK_THAT(out, Catch::Contains("static=0"));
  CHECK_THAT(out, Catch::Contains("echo ok"));
}

TEST_CASE("socksify env in a script: a warning that the script's own shell is not reached",
          "[shim][lab][session]") {
  // A script cannot be restarted: it says so, once, and the dynamic programs it starts are
  // still socksified.
  const std::string script = lab().dir() + "/session.sh";
  write_file(script, "eval \"$(" + lab().socksify() + " -x " + kDanted + " env)\"\n" + probe() +
                         " connect target.lab 7000 block\n");
  const std::string out = run_ok("sh " + script + " 2>&1");
  CHECK_THAT(out, Catch::Contains("socksify: warning: this shell itself is not socksified"));
  CHECK_THAT(out, Catch::Contains("peer 198.18."));
}

TEST_CASE("one hosts-file rule: a listed name gets its listed address, preloaded or supervised",
          "[shim][lab][session]") {
  // The client side's /etc/hosts (a mount namespace of the command's own) lists
  // hosts-only.test as the target's address, which the client side cannot reach itself: curl
  // (preloaded), the static probe and a pure Go program (supervised) all connect to that
  // address through danted, and no DNS query leaves.
  const std::string hosts = lab().dir() + "/hosts";
  write_file(hosts, read_file("/etc/hosts") + "\n198.51.100.1 hosts-only.test\n");
  const std::string ns =
      "unshare -m sh -c \"mount --bind " + hosts + " /etc/hosts && exec \\\"\\$@\\\"\" -- ";
  const std::string go = go_build("dial", false);
  const std::size_t mark = lab().dns_log().size();
  const std::string via = ns + lab().socksify() + " -x " + kDanted + " -v ";
  const std::string curl =
      run_ok(via + "curl -sS -m 10 http://hosts-only.test:8080/?via=hostsfile");
  CHECK_THAT(curl, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(curl, Catch::Contains("connect 198.51.100.1:8080 via " + kDanted));
  CHECK_THAT(server_log_with("/?via=hostsfile"),
             Catch::Contains("http 198.51.100.1 /?via=hostsfile"));
  const std::string st = run_ok(via + SOCKSIFY_STATIC_PROBE " connect hosts-only.test 7000 block");
  CHECK_THAT(st, Catch::Contains("peer 198.51.100.1 7000"));
  CHECK_THAT(st, Catch::Contains("connect 198.51.100.1:7000 via " + kDanted));
  const std::string g = run_ok(via + go + " hosts-only.test:7000");
  CHECK_THAT(g, Catch::Contains("echo hello from go"));
  CHECK_THAT(g, Catch::Contains("connect 198.51.100.1:7000 via " + kDanted));
  // A name the file does not list still goes to the proxy by name.
  const std::string other = run_ok(via + "curl -sS -m 10 http://target.lab:8080/");
  CHECK_THAT(other, Catch::Contains("connect target.lab:8080 via " + kDanted));
  CHECK(leaks_since(mark).empty());
}

TEST_CASE("one fake-DNS view: a name resolved in one process is connected to from another",
          "[shim][lab][session]") {
  // The user's table (a file in the lab's runtime directory) is every process's: the static
  // probe, under the supervisor, resolves target.lab through the supervisor's DNS responder;
  // getent, preloaded, gets the same fake address; curl and the static probe again, each a
  // process of its own, connect to that address and each sends the NAME through danted.
  const std::string via = lab().socksify() + " -x " + kDanted + " ";
  const std::size_t mark = lab().dns_log().size();
  const std::string first =
      run_ok(via + "-v " SOCKSIFY_STATIC_PROBE " connect target.lab 7000 block");
  const auto at = first.find("peer 198.18.");
  REQUIRE(at != std::string::npos);
  const std::string addr = first.substr(at + 5, first.find(' ', at + 5) - (at + 5));
  const std::string ip = run_ok(via + "getent ahostsv4 target.lab");
  CHECK_THAT(ip, Catch::StartsWith(addr + " "));
  const std::string curl = run_ok(via + "-v curl -sS -m 10 http://" + addr + ":8080/?via=shared");
  CHECK_THAT(curl, Catch::Contains("hello from the proxy side"));
  CHECK_THAT(curl, Catch::Contains("connect target.lab:8080 via " + kDanted));
  const std::string st =
      run_ok(via + "-v " SOCKSIFY_STATIC_PROBE " connect " + addr + " 7000 block");
  CHECK_THAT(st, Catch::Contains("connect target.lab:7000 via " + kDanted));
  CHECK_THAT(st, Catch::Contains("echo ok"));
  CHECK(leaks_since(mark).empty());
  // The table: the user's, private.
  const std::string ls = run_ok("ls -l " + lab().dir() + "/socksify/");
  CHECK_THAT(ls, Catch::Contains("-rw------- "));
  CHECK_THAT(ls, Catch::Contains("fakedns-v1-198.18.0.0_15-"));
}

TEST_CASE("one fake-DNS view per user: another user can neither read nor poison the table",
          "[shim][lab][session]") {
  // root's processes share root's table; the test user (unprivileged), even pointed at root's
  // runtime directory, gets a table of its own: the same first address means another name
  // there, and root's address keeps its name.
  ensure_test_user();
  const std::string via = lab().socksify() + " -x " + kDanted + " ";
  const std::string mine = run_ok(via + "getent ahostsv4 target.lab");
  const std::string addr = mine.substr(0, mine.find(' '));
  REQUIRE_THAT(addr, Catch::StartsWith("198.18."));
  const std::string other =
      run_ok("setpriv --reuid=" + std::string(kTestUser) + " --regid=" + kTestUser +
             " --clear-groups env XDG_RUNTIME_DIR=" + lab().dir() + " " + via +
             "sh -c \"getent ahostsv4 poison.target.lab; getent ahostsv4 target.lab\" 2>&1");
  INFO(other);
  // A table of its own (root's runtime directory is not its: its own fallback directory),
  // shared by its two processes: the second name got the second address, and no line.
  CHECK_THAT(other, Catch::StartsWith(addr + " "));
  CHECK_THAT(other, Catch::Contains("poison.target.lab"));
  CHECK_THAT(other, !Catch::Contains("socksify["));
  CHECK_THAT(other, !Catch::Contains(addr + "      STREAM target.lab"));
  // root's address still names root's name.
  const std::string back = run_ok(via + "-v curl -sS -m 10 http://" + addr + ":8080/?via=peruser");
  CHECK_THAT(back, Catch::Contains("connect target.lab:8080 via " + kDanted));
  CHECK_THAT(back, Catch::Contains("hello from the proxy side"));
}
