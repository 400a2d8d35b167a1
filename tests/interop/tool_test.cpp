// `socksify check` against a real danted: the report, and precise failures.
#include "interop/fixtures.hpp"
#include "interop/scenarios.hpp"

using namespace testing;

TEST_CASE("socksify check through danted", "[tool][danted]") {
  Danted proxy(true);
  Targets t;
  const std::string tool = SOCKSIFY_TOOL;
  const std::string env = std::string("SOCKSIFY_PASSWORD=") + kTestPassword + " ";
  const std::string uri =
      std::string("socks5://") + kTestUser + "@127.0.0.1:" + std::to_string(proxy.port());
  std::string out;
  CHECK(run_command(env + tool + " check -x " + uri + " 127.0.0.1:" + std::to_string(t.v4.port()),
                    &out) == 0);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("method:    username/password (0x02)"));
  CHECK_THAT(out, Catch::Contains("1 wait for the server (pipelined)"));
  CHECK_THAT(out, Catch::Contains("result:    OK"));
  CHECK_THAT(out, Catch::Contains("127.0.0.2"));  // danted's egress address
  // The times are measured (a connect and a handshake take some microseconds at least).
  CHECK_THAT(out, !Catch::Contains(" 0.000 ms"));
  CHECK_FALSE(out.find(kTestPassword) != std::string::npos);  // never printed

  // Probe only, proxy from the environment, password from a file.
  TempDir dir;
  write_file(dir.file("pw"), std::string(kTestPassword) + "\n");
  CHECK(
      run_command("SOCKSIFY_PROXY=" + uri + " " + tool + " check --password-file " + dir.file("pw"),
                  &out) == 0);
  CHECK_THAT(out, Catch::Contains("result:    proxy OK"));

  CHECK(run_command(tool + " check -x " + uri + ":nope 127.0.0.1:1", &out) != 0);
  CHECK_THAT(out, Catch::Contains("invalid proxy URI"));

  // Every failure ends with its result line (the reason in it), and a failed handshake shows
  // no figures.
  CHECK(run_command("SOCKSIFY_PASSWORD=wrong " + tool + " check -x " + uri + " 127.0.0.1:1",
                    &out) == 1);
  INFO(out);
  CHECK_THAT(out, Catch::Contains("\nresult:    FAILED: proxy socks5://"));
  CHECK_THAT(out, Catch::EndsWith(" rejected user '" + std::string(kTestUser) +
                                  "': wrong user name or password\n"));
  CHECK_THAT(out, !Catch::Contains("handshake:"));
  CHECK_THAT(out, Catch::Contains("method:    username/password (0x02)"));

  CHECK(run_command(tool + " check -x socks5://127.0.0.1:1 127.0.0.1:80", &out) == 1);
  CHECK_THAT(out, Catch::EndsWith("result:    FAILED: proxy socks5://127.0.0.1:1 unreachable: "
                                  "Connection refused\n"));

  CHECK(run_command(env + tool + " check -x " + uri + " 127.0.0.1:1", &out) == 1);
  CHECK_THAT(out, !Catch::Contains("handshake:"));
  CHECK_THAT(out, Catch::EndsWith("could not connect to 127.0.0.1:1: connection refused\n"));
  CHECK_THAT(out, Catch::Contains("result:    FAILED: "));

  // A dead proxy and a live one: each has its result, and the last line matches the exit
  // status.
  CHECK(run_command(env + tool + " check -x socks5://127.0.0.1:1 -x " + uri, &out) == 1);
  CHECK_THAT(out, Catch::Contains("result:    FAILED: proxy socks5://127.0.0.1:1 unreachable"));
  CHECK_THAT(out, Catch::Contains("result:    proxy OK"));
  CHECK_THAT(out, Catch::EndsWith("overall:   FAILED: 1 of 2 proxies failed (connections fail "
                                  "over to the others)\n"));
  CHECK(run_command(env + tool + " check -x " + uri + " -x " + uri, &out) == 0);
  CHECK_THAT(out, Catch::EndsWith("overall:   all 2 proxies OK\n"));

  CHECK(run_command(tool + " --version", &out) == 0);
  CHECK_THAT(out, Catch::StartsWith("socksify "));
  CHECK(run_command(tool + " check --help", &out) == 0);
  CHECK_THAT(out, Catch::Contains("--proxy"));
}
