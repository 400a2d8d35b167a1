#include "integration/lab.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "interop/fixtures.hpp"

namespace testing {
namespace {

// Removes namespaces left by test processes that no longer exist (a crashed run).
void sweep_stale() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = e.path().filename();
    if (name.rfind("sfyp", 0) != 0 && name.rfind("sfyc", 0) != 0) continue;
    const int pid = std::atoi(name.c_str() + 4);
    if (pid > 0 && kill(pid, 0) != 0) {
      run_command("ip netns del " + name);
      std::filesystem::remove_all("/etc/netns/" + name, ec);
    }
  }
}

bool wait_in(const std::string& ns, const std::string& host, int port) {
  const std::string cmd = "ip netns exec " + ns +
                          " python3 -c \"import socket,time\nfor i in range(200):\n try:\n  "
                          "socket.create_connection(('" +
                          host + "'," + std::to_string(port) +
                          "),0.2).close(); break\n except OSError: time.sleep(0.05)\nelse: "
                          "raise SystemExit(1)\"";
  return run_command(cmd) == 0;
}

}  // namespace

void Lab::sh(const std::string& command) const {
  std::string out;
  const int rc = run_command(command, &out);
  INFO(command << "\n" << out);
  REQUIRE(rc == 0);
}

Lab::Lab() {
  if (geteuid() != 0) FAIL("the shim lab needs root (network namespaces)");
  require_program("ip", "iproute2");
  const std::string python = require_program("python3", "python3");
  const std::string danted = require_program("danted", "dante-server");
  const std::string ms = require_program("microsocks", "microsocks");
  const std::string sshd = require_program("sshd", "openssh-server");
  const std::string ssh = require_program("ssh", "openssh-client");
  sweep_stale();
  const std::string id = std::to_string(getpid());
  proxy_ns_ = "sfyp" + id;
  client_ns_ = "sfyc" + id;
  const std::string P = "ip -n " + proxy_ns_ + " ";
  const std::string C = "ip -n " + client_ns_ + " ";
  // Per-namespace /etc files: `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc/*.
  for (const auto& [ns, hosts] :
       {std::pair{proxy_ns_, std::string("127.0.0.1 localhost\n::1 localhost\n"
                                         "198.51.100.1 target.lab\n2001:db8::1 target6.lab\n")},
        std::pair{client_ns_,
                  std::string("127.0.0.1 localhost\n::1 localhost\n192.0.2.1 direct.lab\n")}}) {
    std::filesystem::create_directories("/etc/netns/" + ns);
    write_file("/etc/netns/" + ns + "/hosts", hosts);
    write_file("/etc/netns/" + ns + "/resolv.conf",
               "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n");
    chmod(("/etc/netns/" + ns + "/hosts").c_str(), 0644);
    chmod(("/etc/netns/" + ns + "/resolv.conf").c_str(), 0644);
  }
  sh("ip netns add " + proxy_ns_);
  sh("ip netns add " + client_ns_);
  sh("ip link add sfp" + id + " type veth peer name sfc" + id);
  sh("ip link set sfp" + id + " netns " + proxy_ns_);
  sh("ip link set sfc" + id + " netns " + client_ns_);
  sh(P + "addr add 192.0.2.1/24 dev sfp" + id);
  sh(C + "addr add 192.0.2.2/24 dev sfc" + id);
  sh(P + "link set sfp" + id + " up");
  sh(C + "link set sfc" + id + " up");
  sh(P + "link set lo up");
  sh(C + "link set lo up");
  sh(P + "addr add 198.51.100.1/32 dev lo");
  sh(P + "-6 addr add 2001:db8::1/128 dev lo nodad");

  const std::string inP = "ip netns exec " + proxy_ns_;
  std::filesystem::create_directories(dir_.file("www"));
  write_file(dir_.file("www/index.html"), "hello from the proxy side\n");
  chmod(dir_.file("www/index.html").c_str(), 0644);
  auto spawn = [this](const std::string& ns, std::vector<std::string> argv,
                      const std::string& log) {
    std::vector<std::string> full{"/usr/bin/env", "ip", "netns", "exec", ns};
    full.insert(full.end(), argv.begin(), argv.end());
    procs_.push_back(std::make_unique<Process>(full, dir_.file(log)));
  };
  spawn(proxy_ns_,
        {python, std::string(SOCKSIFY_SOURCE_DIR) + "/tests/integration/lab_servers.py",
         dir_.file("servers.log"), dir_.file("www"), "198.51.100.1", "127.0.0.1", "2001:db8::1",
         "192.0.2.1"},
        "servers.out");
  spawn(client_ns_,
        {python, std::string(SOCKSIFY_SOURCE_DIR) + "/tests/integration/lab_servers.py",
         "--dns-sink", dir_.file("dns.log")},
        "dns.out");

  // danted: method none and username (a client offering one method gets that one).
  write_file(dir_.file("danted.conf"),
             "logoutput: " + dir_.file("danted.log") +
                 "\n"
                 "internal: 192.0.2.1 port = 1080\n"
                 "external: 198.51.100.1\n"
                 "external: 2001:db8::1\n"
                 "clientmethod: none\n"
                 "socksmethod: username none\n"
                 "user.privileged: root\n"
                 "user.unprivileged: nobody\n"
                 "client pass {\n  from: 0/0 to: 0/0\n}\n"
                 "socks pass {\n  from: 0/0 to: 0/0\n  command: bind connect udpassociate\n"
                 "  log: error connect\n}\n"
                 "socks pass {\n  from: 0/0 to: 0/0\n  command: bindreply udpreply\n}\n");
  spawn(proxy_ns_, {danted, "-f", dir_.file("danted.conf")}, "danted.out");
  spawn(proxy_ns_, {ms, "-i", "192.0.2.1", "-p", "1082"}, "microsocks.out");
  REQUIRE(wait_in(client_ns_, "192.0.2.1", 1080));
  REQUIRE(wait_in(client_ns_, "192.0.2.1", 1082));
  REQUIRE(wait_in(proxy_ns_, "198.51.100.1", 8080));
  REQUIRE(wait_in(client_ns_, "127.0.0.1", 53));
}

Lab::~Lab() {
  // Runs after Catch has shut down (a function-local static): no Catch macros from here on.
  procs_.clear();  // kills every server
  (void)std::system(("ip netns del " + proxy_ns_ + " 2>/dev/null").c_str());
  (void)std::system(("ip netns del " + client_ns_ + " 2>/dev/null").c_str());
  std::error_code ec;
  std::filesystem::remove_all("/etc/netns/" + proxy_ns_, ec);
  std::filesystem::remove_all("/etc/netns/" + client_ns_, ec);
}

void Lab::start_tinyproxy(int port, bool basic_auth) {
  const std::string name = "tinyproxy-" + std::to_string(port);
  if (std::filesystem::exists(dir_.file(name + ".conf"))) return;
  const std::string tinyproxy = require_program("tinyproxy", "tinyproxy");
  std::string conf = "User nobody\nGroup nogroup\nPort " + std::to_string(port) +
                     "\nListen 192.0.2.1\nTimeout 30\nLogLevel Connect\nMaxClients 200\n"
                     "Allow 192.0.2.0/24\n";
  if (basic_auth) conf += std::string("BasicAuth ") + kTestUser + " " + kTestPassword + "\n";
  write_file(dir_.file(name + ".conf"), conf);
  chmod(dir_.file(name + ".conf").c_str(), 0644);
  // -d: in the foreground, logging to its standard output.
  start_on_proxy_side({tinyproxy, "-d", "-c", dir_.file(name + ".conf")}, name + ".log");
  REQUIRE(wait_in(client_ns_, "192.0.2.1", port));
}

std::string Lab::test_ca() {
  const std::string d = dir_.file("tls");
  if (!std::filesystem::exists(d + "/ca.pem")) {
    const std::string openssl = require_program("openssl", "openssl");
    std::filesystem::create_directories(d);
    // A CA, another CA, and two server certificates signed by the first: one for the proxy's
    // address and name, one for another name only.
    const std::string req = openssl + " req -x509 -newkey rsa:2048 -nodes -days 30 ";
    const std::string leaf = openssl + " req -newkey rsa:2048 -nodes ";
    const std::string sign =
        openssl + " x509 -req -days 30 -CA ca.pem -CAkey ca.key -CAcreateserial ";
    sh("cd " + d + " && " + req + "-keyout ca.key -out ca.pem -subj /CN=socksify-lab-CA" +
       " 2>/dev/null && " + req + "-keyout other.key -out other.pem -subj /CN=other-CA" +
       " 2>/dev/null && " + leaf + "-keyout good.key -out good.csr -subj /CN=192.0.2.1" +
       " 2>/dev/null && printf 'subjectAltName=IP:192.0.2.1,DNS:proxy.socksify.test\n' > good.ext" +
       " && " + sign + "-in good.csr -out good.pem -extfile good.ext 2>/dev/null && " + leaf +
       "-keyout elsewhere.key -out elsewhere.csr -subj /CN=elsewhere.test 2>/dev/null" +
       " && printf 'subjectAltName=DNS:elsewhere.test\n' > elsewhere.ext && " + sign +
       "-in elsewhere.csr -out elsewhere.pem -extfile elsewhere.ext 2>/dev/null" +
       " && chmod 0644 *.pem *.key");
  }
  return d + "/ca.pem";
}

std::string Lab::other_ca() {
  test_ca();
  return dir_.file("tls/other.pem");
}

void Lab::start_stunnel(int port, int backend_port, const std::string& cert) {
  const std::string name = "stunnel-" + std::to_string(port);
  if (std::filesystem::exists(dir_.file(name + ".conf"))) return;
  const std::string stunnel = require_program("stunnel4", "stunnel4");
  test_ca();
  const std::string tls = dir_.file("tls");
  write_file(dir_.file(name + ".conf"),
             "foreground = yes\npid =\nsyslog = no\ndebug = notice\n[https]\naccept = 192.0.2.1:" +
                 std::to_string(port) + "\nconnect = 192.0.2.1:" + std::to_string(backend_port) +
                 "\ncert = " + tls + "/" + cert + ".pem\nkey = " + tls + "/" + cert + ".key\n");
  start_on_proxy_side({stunnel, dir_.file(name + ".conf")}, name + ".log");
  if (!wait_on_proxy_side("192.0.2.1", port)) {
    FAIL("stunnel did not start: " << read_file(dir_.file(name + ".log")));
  }
}

void Lab::start_on_proxy_side(std::vector<std::string> argv, const std::string& log) {
  std::vector<std::string> full{"/usr/bin/env", "ip", "netns", "exec", proxy_ns_};
  full.insert(full.end(), argv.begin(), argv.end());
  procs_.push_back(std::make_unique<Process>(full, dir_.file(log)));
}

std::string Lab::start_udp_logger(bool client_side, const std::string& addr, int port) {
  const std::string name =
      "udp-" + std::string(client_side ? "c-" : "p-") + addr + "-" + std::to_string(port) + ".log";
  const std::string log = dir_.file(name);
  std::vector<std::string> full{
      "/usr/bin/env",
      "ip",
      "netns",
      "exec",
      client_side ? client_ns_ : proxy_ns_,
      "python3",
      std::string(SOCKSIFY_SOURCE_DIR) + "/tests/integration/lab_servers.py",
      "--udp-log",
      log,
      addr,
      std::to_string(port)};
  procs_.push_back(std::make_unique<Process>(full, log + ".out"));
  REQUIRE_THAT(wait_for_text([log] { return read_file(log); }, "ready"), Catch::Contains("ready"));
  return log;
}

std::string Lab::synced_log(bool client_side, const std::string& addr, int port) const {
  static int serial = 0;
  const std::string marker = "sync-" + std::to_string(++serial);
  const std::string log = dir_.file("udp-" + std::string(client_side ? "c-" : "p-") + addr + "-" +
                                    std::to_string(port) + ".log");
  sh("ip netns exec " + (client_side ? client_ns_ : proxy_ns_) +
     " python3 " SOCKSIFY_SOURCE_DIR "/tests/integration/lab_servers.py --sync " + addr + " " +
     std::to_string(port) + " " + marker);
  const std::string text =
      wait_for_text([log] { return read_file(log); }, "sync " + marker + "-udp\n");
  REQUIRE_THAT(text, Catch::Contains("sync " + marker + "-udp\n"));
  REQUIRE_THAT(text, Catch::Contains("sync " + marker + "\n"));
  return text;
}

void Lab::proxy_side(const std::string& command) const {
  sh("ip netns exec " + proxy_ns_ + " sh -c '" + command + "'");
}

bool Lab::wait_on_proxy_side(const std::string& host, int port) const {
  return wait_in(proxy_ns_, host, port);
}

int Lab::client(const std::string& command, std::string* out) const {
  // What socksify remembers between processes (settings/state.hpp) stays in this lab.
  return run_command(
      "ip netns exec " + client_ns_ + " env XDG_RUNTIME_DIR=" + dir() + " sh -c '" + command + "'",
      out);
}

void Lab::sync_dns() const {
  static int serial = 0;
  const std::string marker =
      "sync-" + std::to_string(getpid()) + "-" + std::to_string(++serial) + ".sentinel";
  const std::string send =
      "python3 " SOCKSIFY_SOURCE_DIR "/tests/integration/lab_servers.py --query " + marker;
  // The sink handles queries in order: once the marker is logged, so is everything before it.
  // (A lost datagram is sent again.)
  for (int attempt = 0; attempt < 3; ++attempt) {
    client(send);
    if (wait_for_text([this] { return dns_log(); }, "query " + marker, std::chrono::seconds(5))
            .find("query " + marker) != std::string::npos) {
      return;
    }
  }
  FAIL("the DNS sink never logged " << marker);
}

void Lab::start_hostile(const std::string& mode, const std::string& addr, int port,
                        const std::vector<std::string>& args) {
  std::vector<std::string> argv{
      require_program("python3", "python3"),
      std::string(SOCKSIFY_SOURCE_DIR) + "/tests/integration/hostile_proxy.py",
      dir_.file("hostile.log"),
      mode,
      addr,
      std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  start_on_proxy_side(argv, "hostile-" + mode + ".out");
  // Each server says which port it is ready on: several may run in one lab.
  const std::string ready = mode + " ready " + std::to_string(port);
  REQUIRE_THAT(wait_for_text([this] { return hostile_log(); }, ready), Catch::Contains(ready));
}

std::string Lab::start_gssapi() {
  if (!gssapi_env_.empty()) return gssapi_env_;
  require_program("krb5kdc", "krb5-kdc");
  require_program("kinit", "krb5-user");
  require_program("kadmin.local", "krb5-admin-server");
  const std::string sockd = SOCKSIFY_DANTE_GSSAPI;
  if (access(sockd.c_str(), X_OK) != 0) {
    FAIL("no GSSAPI-enabled Dante at " << sockd
                                       << ": build it with scripts/build-dante-gssapi.sh "
                                          "(scripts/test.sh does, once; the build is cached)");
  }
  const std::string scripts = std::string(SOCKSIFY_SOURCE_DIR) + "/tests/gssapi/";
  const std::string krb = krb_dir();
  proxy_side(scripts + "realm.sh create " + krb + " 192.0.2.1 88 192.0.2.1 >/dev/null");
  proxy_side(scripts + "dante.sh " + krb + " 192.0.2.1 1190 198.51.100.1 >/dev/null");
  const std::string k5 = "KRB5_CONFIG=" + krb + "/krb5.conf";
  start_on_proxy_side({"/usr/bin/env", k5, "KRB5_KDC_PROFILE=" + krb + "/kdc.conf", "krb5kdc", "-n",
                       "-r", "SOCKS.TEST"},
                      "krb5kdc.out");
  start_on_proxy_side({"/usr/bin/env", k5, sockd, "-f", krb + "/sockd.conf"}, "sockd.out");
  REQUIRE(wait_on_proxy_side("192.0.2.1", 88));
  for (int port = 1190; port <= 1194; ++port) {
    if (!wait_on_proxy_side("192.0.2.1", port)) {
      FAIL("the GSSAPI Dante did not start: " << read_file(dir_.file("sockd.out")) << sockd_log());
    }
  }
  proxy_side(scripts + "realm.sh kinit " + krb);
  gssapi_env_ = k5 + " KRB5CCNAME=FILE:" + krb + "/alice.ccache";
  return gssapi_env_;
}

void Lab::start_squid_negotiate(int port) {
  const std::string squid = require_program("squid", "squid");
  const std::string helper = "/usr/lib/squid/negotiate_kerberos_auth";
  if (access(helper.c_str(), X_OK) != 0) FAIL("no " << helper << " (Debian's squid has it)");
  const std::string d = dir_.file("squid");
  std::filesystem::create_directories(d);
  // squid runs as the user proxy: its directory and the HTTP key readable by it.
  sh("chown proxy " + d + " && chmod 0644 " + krb_dir() + "/http.keytab");
  write_file(d + "/squid.conf", "http_port 192.0.2.1:" + std::to_string(port) +
                                    "\n"
                                    "auth_param negotiate program " +
                                    helper +
                                    " -s HTTP/192.0.2.1@SOCKS.TEST\n"
                                    "auth_param negotiate children 3\n"
                                    "acl authed proxy_auth REQUIRED\n"
                                    "http_access allow authed\n"
                                    "http_access deny all\n"
                                    "cache deny all\n"
                                    "access_log stdio:" +
                                    d + "/access.log\ncache_log " + d +
                                    "/cache.log\npid_filename " + d + "/squid.pid\ncoredump_dir " +
                                    d + "\nshutdown_lifetime 0 seconds\n");
  chmod((d + "/squid.conf").c_str(), 0644);
  start_on_proxy_side(
      {"/usr/bin/env", "KRB5_CONFIG=" + krb_dir() + "/krb5.conf",
       "KRB5_KTNAME=FILE:" + krb_dir() + "/http.keytab", squid, "-N", "-f", d + "/squid.conf"},
      "squid.out");
  if (!wait_on_proxy_side("192.0.2.1", port)) {
    FAIL("squid did not start: " << read_file(dir_.file("squid.out"))
                                 << read_file(d + "/cache.log"));
  }
}

std::string wait_for_text(const std::function<std::string()>& read, const std::string& text,
                          std::chrono::milliseconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  std::string got = read();
  while (got.find(text) == std::string::npos && std::chrono::steady_clock::now() < end) {
    usleep(20000);
    got = read();
  }
  return got;
}

std::size_t count_of(const std::string& haystack, const std::string& text) {
  std::size_t n = 0;
  for (auto at = haystack.find(text); at != std::string::npos; at = haystack.find(text, at + 1)) {
    ++n;
  }
  return n;
}

std::size_t wait_for_count(const std::function<std::string()>& read, const std::string& text,
                           std::size_t n, std::chrono::milliseconds bound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  std::size_t got = count_of(read(), text);
  while (got < n && std::chrono::steady_clock::now() < end) {
    usleep(20000);
    got = count_of(read(), text);
  }
  return got;
}

std::string Lab::socksify() const {
#ifdef SOCKSIFY_SANITIZER_PRELOAD
  // The wrapper keeps a sanitizer runtime first in LD_PRELOAD, ahead of the (sanitized) shim.
  return "env LD_PRELOAD=" SOCKSIFY_SANITIZER_PRELOAD " " SOCKSIFY_TOOL;
#else
  return SOCKSIFY_TOOL;
#endif
}

}  // namespace testing
