#include "integration/lab_cases.hpp"

#include <sys/stat.h>

#include "interop/fixtures.hpp"

namespace testing {

Lab& lab() {
  static Lab instance;
  return instance;
}

std::string leaks_since(std::size_t mark) {
  lab().sync_dns();
  std::string out;
  const std::string log = lab().dns_log().substr(mark);
  std::size_t start = 0;
  while (start < log.size()) {
    const std::size_t end = log.find('\n', start);
    const std::string line = log.substr(start, end == std::string::npos ? end : end - start + 1);
    if (line.find(".sentinel") == std::string::npos) out += line;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::string dns_since(std::size_t mark, const std::string& text) {
  return wait_for_text([] { return lab().dns_log(); }, text).substr(mark);
}

std::string server_log_with(const std::string& text) {
  return wait_for_text([] { return lab().server_log(); }, text);
}

std::string asyncio_script(int n) {
  const std::string script = lab().dir() + "/asyncio" + std::to_string(n) + ".py";
  write_file(script,
             "import asyncio\n"
             "async def one(i):\n"
             "    r, w = await asyncio.open_connection('target.lab', 7000)\n"
             "    w.write(b'hello %d\\n' % i)\n"
             "    await w.drain()\n"
             "    line = await r.readline()\n"
             "    w.close()\n"
             "    return line == b'hello %d\\n' % i\n"
             "async def main():\n"
             "    ok = await asyncio.gather(*(one(i) for i in range(" +
                 std::to_string(n) +
                 ")))\n"
                 "    print('echoed', sum(ok))\n"
                 "asyncio.run(main())\n");
  return script;
}

std::string run_ok(const std::string& command) {
  std::string out;
  const int rc = lab().client(command, &out);
  INFO(command << "\n--- output ---\n" << out << "--- danted ---\n" << lab().danted_log());
  REQUIRE(rc == 0);
  return out;
}

std::string run_fail(const std::string& command) {
  std::string out;
  const int rc = lab().client(command, &out);
  INFO(command << "\n" << out);
  REQUIRE(rc != 0);
  return out;
}

std::string start_sshd(int port) {
  const std::string sshd = require_program("sshd", "openssh-server");
  const std::string keygen = require_program("ssh-keygen", "openssh-client");
  const std::string d = lab().dir();
  std::string out;
  mkdir("/run/sshd", 0755);
  run_command("rm -f " + d + "/host_key " + d + "/host_key.pub " + d + "/id " + d + "/id.pub");
  REQUIRE(run_command(keygen + " -q -t ed25519 -N \"\" -f " + d + "/host_key", &out) == 0);
  REQUIRE(run_command(keygen + " -q -t ed25519 -N \"\" -f " + d + "/id", &out) == 0);
  write_file(d + "/authorized_keys", read_file(d + "/id.pub"));
  write_file(d + "/sshd_config",
             "ListenAddress 198.51.100.1:" + std::to_string(port) + "\nHostKey " + d +
                 "/host_key\nUsePAM no\nStrictModes no\nAuthorizedKeysFile " + d +
                 "/authorized_keys\nPasswordAuthentication no\n"
                 "PermitRootLogin prohibit-password\nUseDNS no\nAllowTcpForwarding yes\n"
                 "MaxStartups 100\nPidFile " +
                 d + "/sshd.pid\n");
  lab().start_on_proxy_side({sshd, "-D", "-e", "-f", d + "/sshd_config"}, "sshd.log");
  REQUIRE(lab().wait_on_proxy_side("198.51.100.1", port));
  return d + "/id";
}

// A Go program from tests/integration/go, built once per lab with cgo on or off.
std::string go_build(const std::string& source, bool cgo) {
  const std::string go = require_program("go", "golang-go");
  const std::string out = lab().dir() + "/" + source + (cgo ? "-cgo" : "-static");
  const std::string env = "HOME=" + lab().dir() + " GOCACHE=" + lab().dir() +
                          "/go-cache GO111MODULE=off GOPATH=" + lab().dir() + "/gopath";
  if (run_command("test -x " + out) != 0) {
    REQUIRE(run_command("cd " + lab().dir() + " && env " + env +
                        (cgo ? " CGO_ENABLED=1 " : " CGO_ENABLED=0 ") + go + " build -o " + out +
                        " " SOCKSIFY_SOURCE_DIR "/tests/integration/go/" + source + ".go") == 0);
  }
  return out;
}

}  // namespace testing
