// socksify: the command-line tool. Today: `socksify check`. Running COMMAND through the
// preloaded shim (`socksify [options] COMMAND...`) arrives with the shim.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

// First line of a file, without its newline: passwords stay out of argv and out of `ps`.
bool read_password_file(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::getline(in, out);
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run programs through a SOCKS5 proxy, and test proxies.", "socksify"};
  app.set_version_flag("--version", std::string("socksify ") + SOCKSIFY_VERSION);
  app.footer(
      "Proxy URIs: socks5://[user[:password]@]host[:port] (names resolved locally) or\n"
      "socks5h://... (the proxy resolves names). Default port 1080.\n"
      "Environment: SOCKSIFY_PROXY (proxy URI), SOCKSIFY_PASSWORD (password for the URI's user).");

  std::string proxy_text;
  std::string password_file;
  std::string pipelining = "auto";
  int timeout_ms = 10000;
  std::string target;
  auto* check = app.add_subcommand(
      "check",
      "Connect to the proxy, show the method, handshake time and waits for the server; "
      "with HOST:PORT, CONNECT through it and report the result.");
  check->add_option("-x,--proxy", proxy_text, "proxy URI (default: $SOCKSIFY_PROXY)");
  check->add_option("--password-file", password_file,
                    "read the password for the URI's user from the first line of FILE");
  check
      ->add_option("--pipelining", pipelining,
                   "send greeting, credentials and request in one write: auto, on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  check->add_option("--timeout", timeout_ms, "deadline of each step in milliseconds")
      ->check(CLI::Range(1, 3600000));
  check->add_option("target", target, "HOST:PORT to CONNECT to through the proxy");
  app.require_subcommand(1);

  CLI11_PARSE(app, argc, argv);

  bool from_argv = !proxy_text.empty();
  if (proxy_text.empty()) {
    if (const char* p = env("SOCKSIFY_PROXY")) proxy_text = p;
  }
  if (proxy_text.empty()) {
    std::fprintf(stderr, "socksify: no proxy: give --proxy URI or set SOCKSIFY_PROXY\n");
    return 2;
  }
  auto uri = socks5::parse_proxy_uri(proxy_text);
  if (!uri) {
    std::fprintf(stderr, "socksify: invalid proxy URI (at offset %zu): %s\n", uri.error().position,
                 uri.error().message.c_str());
    return 2;
  }
  if (from_argv && uri->password) {
    std::fprintf(stderr,
                 "socksify: warning: a password on the command line is visible to other users "
                 "(ps); use SOCKSIFY_PASSWORD or --password-file\n");
  }
  if (uri->user && !uri->password) {
    std::string pw;
    if (!password_file.empty()) {
      if (!read_password_file(password_file, pw)) {
        std::fprintf(stderr, "socksify: cannot read password file %s\n", password_file.c_str());
        return 2;
      }
      uri->password = std::move(pw);
    } else if (const char* p = env("SOCKSIFY_PASSWORD")) {
      uri->password = p;
    }
  }

  socksify::tool::CheckRequest request;
  request.proxy = std::move(*uri);
  if (!target.empty()) request.target = target;
  request.options.timeout = std::chrono::milliseconds(timeout_ms);
  request.options.pipelining = pipelining == "on"    ? socks5::Pipelining::on
                               : pipelining == "off" ? socks5::Pipelining::off
                                                     : socks5::Pipelining::automatic;
  std::fflush(stdout);
  const int rc = socksify::tool::run_check(request);
  std::fflush(stdout);
  return rc;
}
