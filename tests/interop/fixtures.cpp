#include "interop/fixtures.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>

namespace testing {

int run_command(const std::string& command, std::string* out) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string text;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) text += buf;
  const int status = pclose(p);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ensure_test_user() {
  if (geteuid() != 0) {
    FAIL("danted's username method checks system accounts: run the interop tests as root");
  }
  if (getpwnam(kTestUser) == nullptr) {
    require_program("useradd", "passwd");
    std::string out;
    REQUIRE(run_command(std::string("useradd -M -r -s /usr/sbin/nologin ") + kTestUser, &out) == 0);
  }
  // SHA-512 with 1000 rounds: Debian's default yescrypt costs ~18 ms of server CPU per
  // authentication, which would swamp every latency figure.
  std::string out;
  REQUIRE(run_command(std::string("echo '") + kTestUser + ":" + kTestPassword +
                          "' | chpasswd -c SHA512 -s 1000",
                      &out) == 0);
}

std::unique_ptr<Process> with_proxy_only_name(const TempDir& dir,
                                              const std::vector<std::string>& argv,
                                              const std::string& output) {
  // The server's own view of /etc/hosts adds kProxyOnlyName (a mount namespace of its own).
  write_file(dir.file("hosts"), read_file("/etc/hosts") + "\n127.0.0.1 " + kProxyOnlyName + "\n");
  chmod(dir.file("hosts").c_str(), 0644);
  const std::string unshare = require_program("unshare", "util-linux");
  std::vector<std::string> cmd{
      unshare,           "-m", "sh", "-c", "mount --bind \"$0\" /etc/hosts && shift && exec \"$@\"",
      dir.file("hosts"), "--"};
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return std::make_unique<Process>(cmd, output);
}

Danted::Danted(bool username_method) : port_(free_port()) {
  const std::string danted = require_program("danted", "dante-server");
  if (username_method) ensure_test_user();
  const std::string p = std::to_string(port_);
  write_file(dir_.file("danted.conf"),
             "logoutput: " + dir_.file("danted.log") +
                 "\n"
                 "internal: 127.0.0.1 port = " +
                 p +
                 "\n"
                 "internal: ::1 port = " +
                 p +
                 "\n"
                 "external: 127.0.0.2\n"
                 "external: ::1\n"
                 "clientmethod: none\n"
                 "socksmethod: " +
                 (username_method ? "username" : "none") +
                 "\n"
                 "user.privileged: root\n"
                 "user.unprivileged: nobody\n"
                 "timeout.negotiate: 10\n"
                 "client pass {\n  from: 0/0 to: 0/0\n  log: error\n}\n"
                 "socks pass {\n  from: 0/0 to: 0/0\n  command: bind connect udpassociate\n"
                 "  log: error connect\n}\n"
                 "socks pass {\n  from: 0/0 to: 0/0\n  command: bindreply udpreply\n"
                 "  log: error connect\n}\n");
  proc_ =
      with_proxy_only_name(dir_, {danted, "-f", dir_.file("danted.conf")}, dir_.file("stderr.log"));
  if (!wait_for_port("127.0.0.1", port_)) {
    FAIL("danted did not start: " << read_file(dir_.file("stderr.log")) << log());
  }
}

socks5::ProxyUri loopback_proxy(std::uint16_t port, bool with_user) {
  socks5::ProxyUri u;
  u.host = "127.0.0.1";
  u.port = port;
  if (with_user) {
    u.user = kTestUser;
    u.password = kTestPassword;
  }
  return u;
}

socks5::ProxyUri Danted::uri(bool with_user) const {
  return loopback_proxy(port_, with_user);
}

Microsocks::Microsocks(bool with_auth, bool ipv6_egress) : auth_(with_auth), port_(free_port()) {
  const std::string ms = require_program("microsocks", "microsocks");
  std::vector<std::string> argv{
      ms, "-i", "127.0.0.1", "-p", std::to_string(port_), "-b", ipv6_egress ? "::1" : "127.0.0.3"};
  if (with_auth) {
    argv.insert(argv.end(), {"-u", kTestUser, "-P", kTestPassword});
  }
  proc_ = std::make_unique<Process>(argv, dir_.file("microsocks.log"));
  if (!wait_for_port("127.0.0.1", port_)) {
    FAIL("microsocks did not start: " << read_file(dir_.file("microsocks.log")));
  }
}

socks5::ProxyUri Microsocks::uri() const {
  return loopback_proxy(port_, auth_);
}

Tinyproxy::Tinyproxy(bool basic_auth, bool bind_egress) : port_(free_port()) {
  const std::string tinyproxy = require_program("tinyproxy", "tinyproxy");
  std::string conf = "User nobody\nGroup nogroup\nPort " + std::to_string(port_) +
                     "\nListen 127.0.0.1\nTimeout 30\nLogLevel Connect\nMaxClients 100\n"
                     "Allow 127.0.0.1\n";
  if (bind_egress) conf += "Bind 127.0.0.4\n";
  if (basic_auth) conf += std::string("BasicAuth ") + kTestUser + " " + kTestPassword + "\n";
  write_file(dir_.file("tinyproxy.conf"), conf);
  // -d: in the foreground, logging to its standard output.
  proc_ = with_proxy_only_name(dir_, {tinyproxy, "-d", "-c", dir_.file("tinyproxy.conf")},
                               dir_.file("tinyproxy.log"));
  if (!wait_for_port("127.0.0.1", port_)) FAIL("tinyproxy did not start: " << log());
}

socks5::ProxyUri Tinyproxy::uri(bool with_user) const {
  auto u = loopback_proxy(port_, with_user);
  u.scheme = socks5::Scheme::http;
  return u;
}

SshDynamic::SshDynamic() : sshd_port_(free_port()), socks_port_(free_port()) {
  const std::string sshd = require_program("sshd", "openssh-server");
  const std::string ssh = require_program("ssh", "openssh-client");
  const std::string keygen = require_program("ssh-keygen", "openssh-client");
  mkdir("/run/sshd", 0755);  // privilege separation directory, normally made by the unit
  std::string out;
  REQUIRE(run_command(keygen + " -q -t ed25519 -N '' -f " + dir_.file("host_key"), &out) == 0);
  REQUIRE(run_command(keygen + " -q -t ed25519 -N '' -f " + dir_.file("id"), &out) == 0);
  write_file(dir_.file("authorized_keys"), read_file(dir_.file("id.pub")));
  const passwd* pw = getpwuid(geteuid());
  REQUIRE(pw != nullptr);
  write_file(dir_.file("sshd_config"), "Port " + std::to_string(sshd_port_) +
                                           "\n"
                                           "ListenAddress 127.0.0.1\n"
                                           "HostKey " +
                                           dir_.file("host_key") +
                                           "\n"
                                           "PidFile " +
                                           dir_.file("sshd.pid") +
                                           "\n"
                                           "UsePAM no\n"
                                           "StrictModes no\n"
                                           "AuthorizedKeysFile " +
                                           dir_.file("authorized_keys") +
                                           "\n"
                                           "PasswordAuthentication no\n"
                                           "KbdInteractiveAuthentication no\n"
                                           "PubkeyAuthentication yes\n"
                                           "PermitRootLogin prohibit-password\n"
                                           "AllowTcpForwarding yes\n"
                                           "UseDNS no\n"
                                           "MaxStartups 100\n"
                                           "LogLevel DEBUG1\n");
  // sshd resolves the names ssh -D is given: it sees kProxyOnlyName too.
  sshd_ = with_proxy_only_name(
      dir_, {sshd, "-D", "-f", dir_.file("sshd_config"), "-E", dir_.file("sshd.log")},
      dir_.file("sshd.out"));
  if (!wait_for_port("127.0.0.1", sshd_port_)) {
    FAIL("sshd did not start: " << read_file(dir_.file("sshd.out")) << sshd_log());
  }
  ssh_ = std::make_unique<Process>(
      std::vector<std::string>{ssh, "-N", "-D", "127.0.0.1:" + std::to_string(socks_port_), "-i",
                               dir_.file("id"), "-o", "StrictHostKeyChecking=no", "-o",
                               "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o",
                               "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", "-p",
                               std::to_string(sshd_port_), std::string(pw->pw_name) + "@127.0.0.1"},
      dir_.file("ssh.log"));
  if (!wait_for_port("127.0.0.1", socks_port_)) {
    FAIL("ssh -D did not start: " << read_file(dir_.file("ssh.log")) << sshd_log());
  }
}

socks5::ProxyUri SshDynamic::uri() const {
  return loopback_proxy(socks_port_, false);
}

}  // namespace testing
