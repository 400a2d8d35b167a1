// What a new user meets first, in the lab: a failed connection says why by default, a proxy
// that drops pipelined messages costs its stall once and not in every process, a server that
// is not SOCKS5 is named, `eval "$(socksify env)"` and `socksify off`, the warning (or, under
// --strict, the refusal) when a socksified program starts one the library cannot reach, and
// the command line's errors.
#include <dirent.h>

#include <catch2/catch.hpp>
#include <string>

#include "integration/lab_cases.hpp"
#include "interop/fixtures.hpp"

using namespace testing;

namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Runs `script` with sh in the client namespace (written to a file: no quoting games).
int run_script(const std::string& name, const std::string& script, std::string* out) {
  const std::string path = lab().dir() + "/" + name + ".sh";
  write_file(path, "SOCKSIFY=\"" + lab().socksify() + "\"\nPROBE=" + probe() + "\n" + script);
  return lab().client("sh " + path, out);
}

const std::string kMicrosocks = "socks5h://192.0.2.1:1082";

std::string state_file() {
  return lab().dir() + "/socksify/pipelining-192.0.2.1-1082";
}

}  // namespace

TEST_CASE("a failed proxied connect says why by default, -q silences it, -v adds direct ones",
          "[shim][lab][newuser]") {
  const std::string connect = " " + probe() + " connect target.lab 7000";
  // Nothing listens there.
  std::string out = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1" + connect);
  CHECK(count(out,
              "connect to target.lab:7000 failed: proxy socks5h://192.0.2.1:1 unreachable: "
              "Connection refused") == 1);
  // -q: the program's own error only.
  out = run_fail(lab().socksify() + " -q -x socks5h://192.0.2.1:1" + connect);
  CHECK_THAT(out, Catch::Contains("errno=ECONNREFUSED"));
  CHECK_THAT(out, !Catch::Contains("socksify"));
  // A user without a password: the wrapper warns, the failure names it.
  lab().start_hostile("reject-auth", "192.0.2.1", 1092);
  out = run_fail(lab().socksify() + " -x socks5h://alice@192.0.2.1:1092" + connect);
  CHECK_THAT(out, Catch::Contains("names user 'alice' but no password"));
  CHECK(count(out, "rejected user 'alice': no password was given") == 1);
  // An HTTP server where the proxy should be.
  lab().start_hostile("http", "192.0.2.1", 1094);
  out = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1094" + connect);
  CHECK_THAT(out, Catch::Contains("proxy socks5h://192.0.2.1:1094 is not a SOCKS5 server: it sent "
                                  "'HTTP/1.1 400 Bad Request'"));
  out = run_fail(lab().socksify() + " -x socks5h://192.0.2.1:1094 check target.lab:7000");
  CHECK_THAT(out, Catch::Contains("is not a SOCKS5 server: it sent 'HTTP/1.1 400 Bad Request'"));
  CHECK_THAT(out, !Catch::Contains("0xff"));
  // A server that never answers.
  lab().start_hostile("silent", "192.0.2.1", 1093);
  out = run_fail(lab().socksify() + " --timeout 800 -x socks5h://192.0.2.1:1093" + connect);
  CHECK_THAT(out, Catch::Contains("no answer to the greeting within 800 ms"));
  // -v: direct connections too, with the reason.
  out = run_ok(lab().socksify() + " -v -x " + kDanted + " -r \"direct 192.0.2.1/32\" " + probe() +
               " connect 192.0.2.1 7000");
  CHECK_THAT(out, Catch::Contains("connect 192.0.2.1:7000 direct (rule 1)"));
  // Loopback goes direct by default, and -v says so with the rule that changes it.
  out = run_fail(lab().socksify() + " -v -x " + kDanted + " " + probe() + " connect 127.0.0.1 9");
  CHECK_THAT(out, Catch::Contains("connect 127.0.0.1:9 direct (loopback, by default; a rule such "
                                  "as -r 'proxy 127.0.0.0/8' sends it through the proxy)"));
  CHECK_THAT(out, Catch::Contains("errno=ECONNREFUSED"));
  // Preloaded by hand with a log file that cannot be written: said once, then standard error.
  out = run_fail("env LD_PRELOAD=" SOCKSIFY_SHIM
                 " SOCKSIFY_PROXY=socks5h://192.0.2.1:1 SOCKSIFY_LOG_FILE=/nonexistent/dir/log" +
                 connect);
  CHECK(count(out, "cannot write the log file /nonexistent/dir/log") == 1);
  CHECK(count(out, "connect to target.lab:7000 failed") == 1);
  // A success prints nothing by default.
  out = run_ok(lab().socksify() + " -x " + kDanted + connect);
  CHECK_THAT(out, !Catch::Contains("socksify"));
}

TEST_CASE("microsocks: the pipelining stall is paid once, short, and remembered across processes",
          "[shim][lab][newuser]") {
  const std::string run = lab().socksify() + " -v --timeout 10000 -x " + kMicrosocks + " " +
                          probe() + " connect target.lab 7000";
  std::string first = run_ok(run);
  CHECK_THAT(first, Catch::Contains("drops messages sent together with the greeting"));
  CHECK_THAT(first, Catch::Contains("remembered for a day in " + state_file()));
  CHECK_THAT(first, Catch::Contains("--pipelining off"));
  CHECK_THAT(first, Catch::Contains("echo ok"));
  // Only bounds a busy machine cannot miss: never shorter than the floor (200 ms), and inside
  // the one deadline (else the connect would have failed). How short the stall is (eight round
  // trips of the greeting, at least the floor) is measured by the bench (bench/run.sh
  // --stall), not asserted here.
  const auto at = first.find("waited ");
  REQUIRE(at != std::string::npos);
  const long waited = std::stol(first.substr(at + 7));
  CHECK(waited >= 200);
  CHECK(waited < 10000);
  CHECK(read_file(state_file()).rfind("drops\n", 0) == 0);
  // A second process starts from what the first learned: no stall, one message per round trip.
  const std::string second = run_ok(run);
  CHECK_THAT(second, !Catch::Contains("drops messages"));
  CHECK_THAT(second, Catch::Contains("via " + kMicrosocks));
  CHECK_THAT(second, Catch::Contains("2 waits"));
  // check recommends the setting and says where it is remembered.
  const std::string check = run_ok(lab().socksify() + " -x " + kMicrosocks + " check");
  CHECK_THAT(check, Catch::Contains("advice:"));
  CHECK_THAT(check, Catch::Contains("--pipelining off"));
  // Concurrent writers: eight processes that all learn at once leave one whole file and no
  // temporary ones.
  REQUIRE(run_command("rm -f " + state_file()) == 0);
  std::string many;
  CHECK(run_script("many",
                   "pids=\"\"\nfor i in 1 2 3 4 5 6 7 8; do\n"
                   "  $SOCKSIFY -x " +
                       kMicrosocks +
                       " $PROBE connect target.lab 7000 &\n"
                       "  pids=\"$pids $!\"\ndone\nrc=0\n"
                       "for p in $pids; do wait $p || rc=1; done\nexit $rc\n",
                   &many) == 0);
  const std::string text = read_file(state_file());
  CHECK(text.rfind("drops\n", 0) == 0);
  CHECK(count(text, "\n") == 3);
  std::string listing;
  run_command("ls -a " + lab().dir() + "/socksify", &listing);
  CHECK_THAT(listing, !Catch::Contains(".tmp-"));
}

TEST_CASE("eval \"$(socksify env)\" socksifies the shell, eval \"$(socksify off)\" undoes it",
          "[shim][lab][newuser]") {
  std::string out;
  CHECK(run_script("activate",
                   "set -e\neval \"$($SOCKSIFY -x " + kDanted +
                       " --timeout 5000 env)\"\n"
                       "echo \"preload=$LD_PRELOAD\"\necho \"timeout=$SOCKSIFY_TIMEOUT\"\n"
                       "$PROBE connect target.lab 7000\n"
                       "eval \"$($SOCKSIFY off)\"\necho \"after=[$LD_PRELOAD]\"\n"
                       "echo \"left: $(env | grep ^SOCKSIFY_ | tr '\\n' ' ')end\"\n",
                   &out) == 0);
  CHECK_THAT(out, Catch::Contains("preload=" SOCKSIFY_SHIM));
  CHECK_THAT(out, Catch::Contains("timeout=5000"));
  // target.lab has no address on the client side: only the proxy could reach it.
  CHECK_THAT(out, Catch::Contains("echo ok"));
  CHECK_THAT(out, Catch::Contains("after=[]"));
  // Only the mark that a shell with the library loaded starts programs as asked now.
  CHECK_THAT(out, Catch::Contains("left: SOCKSIFY_OFF=1 end"));
  // A script cannot restart its shell: one warning.
  CHECK(count_of(out, "socksify: warning: this shell itself is not socksified") == 1);
  CHECK_THAT(server_log_with("echo 198.51.100.1"), Catch::Contains("echo 198.51.100.1"));
  // A bad option is refused there as anywhere.
  CHECK(lab().client(lab().socksify() + " --timeout soon env", &out) == 2);
  CHECK_THAT(out, Catch::Contains("socksify: --timeout: 'soon'"));
}

TEST_CASE(
    "a socksified program starting a static one: under --mode preload a warning, and under "
    "--strict a refusal",
    "[shim][lab][newuser]") {
  // (In auto mode the library runs it under the supervisor instead: supervisor_test.cpp.)
  std::string out;
  CHECK(run_script("static",
                   "$SOCKSIFY --mode preload -x " + kDanted +
                       " sh -c '" SOCKSIFY_STATIC_PROBE " resolve x.lab; echo shell-went-on'\n",
                   &out) == 0);
  CHECK(count(out, "warning: " SOCKSIFY_STATIC_PROBE " is statically linked") == 1);
  CHECK_THAT(out, Catch::Contains("shell-went-on"));
  const int rc = run_script("strict",
                            "$SOCKSIFY --mode preload --strict -x " + kDanted +
                                " sh -c '" SOCKSIFY_STATIC_PROBE " resolve x.lab; exit $?'\n",
                            &out);
  CHECK(rc == 126);  // the shell's exec failed with EACCES
  CHECK_THAT(out, Catch::Contains("refusing to run " SOCKSIFY_STATIC_PROBE));
  // A dynamic program is not flagged, and it works: the echo crossed danted.
  CHECK(run_script("dynamic",
                   "$SOCKSIFY -x " + kDanted + " sh -c \"$PROBE connect target.lab 7000\"\n",
                   &out) == 0);
  CHECK_THAT(out, !Catch::Contains("warning"));
  CHECK_THAT(out, Catch::Contains("echo ok"));
  CHECK_THAT(server_log_with("echo 198.51.100.1"), Catch::Contains("echo 198.51.100.1"));
}

TEST_CASE("command-line errors: the socksify: prefix, exit 2, the flag the user wrote",
          "[shim][lab][newuser]") {
  std::string out;
  CHECK(lab().client(lab().socksify() + " --bogus true", &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: unknown option '--bogus'"));
  CHECK(lab().client(lab().socksify() + " -x", &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: -x needs a value"));
  CHECK(lab().client(lab().socksify() + " -x sock5://192.0.2.1 true", &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: -x: 'sock5://192.0.2.1'"));
  CHECK_THAT(out, !Catch::Contains("SOCKSIFY_PROXY"));
  CHECK(lab().client(lab().socksify() + " --log-file /nonexistent/dir/log -x " + kDanted + " true",
                     &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: cannot write the log file /nonexistent/dir/log"));
  // Short flags together, as getopt takes them.
  out = run_ok(lab().socksify() + " -vx " + kDanted + " " + probe() + " connect target.lab 7000");
  CHECK_THAT(out, Catch::Contains("via " + kDanted));
  CHECK(lab().client(lab().socksify() + " -vZ true", &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: unknown option '-Z' in '-vZ'"));
  // proxychains4's -f FILE: the hint names -c.
  CHECK(lab().client(lab().socksify() + " -f /etc/proxychains4.conf true", &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: unknown option '-f' (for a configuration file, "
                                    "proxychains4's included, use -c FILE"));
  // One slash after the scheme: said as such, with where.
  CHECK(lab().client(lab().socksify() + " -x socks5h:/127.0.0.1:1080 true", &out) == 2);
  CHECK_THAT(out, Catch::Contains("'socks5h:/127.0.0.1:1080': invalid proxy URI at offset 8: "
                                  "expected '//' after 'socks5h:'"));
  // A configuration file that cannot be read: the reason.
  CHECK(lab().client(lab().socksify() + " -c /nonexistent.conf true", &out) == 2);
  CHECK_THAT(out, Catch::Contains("/nonexistent.conf: cannot read the configuration file: No "
                                  "such file or directory"));
  // A proxy host name that does not exist: caught before the program runs (exit 2, not the
  // program's own failure later).
  CHECK(lab().client(lab().socksify() + " -x socks5h://typo.nxdomain.lab:1080 true", &out) == 2);
  CHECK_THAT(out, Catch::StartsWith("socksify: proxy socks5h://typo.nxdomain.lab:1080: its host "
                                    "name 'typo.nxdomain.lab' does not resolve"));
  // No proxy at all: every way to give one, the configuration file's places included.
  CHECK(lab().client("env -u SOCKSIFY_PROXY HOME=/nonexistent " + lab().socksify() + " true",
                     &out) == 2);
  CHECK_THAT(out, Catch::Contains("no proxy: give one with socksify -x URI, SOCKSIFY_PROXY=URI, "
                                  "or proxy = \"URI\" in a configuration file"));
  CHECK(lab().client(lab().socksify(), &out) == 2);
  CHECK_THAT(out, Catch::Contains("usage: socksify [OPTIONS] COMMAND"));
  CHECK(lab().client(lab().socksify() + " --help", &out) == 0);
  CHECK_THAT(out, Catch::Contains("Example: socksify -x socks5h://"));
  CHECK_THAT(out, Catch::Contains("eval \"$(socksify [OPTIONS] env)\""));
}
