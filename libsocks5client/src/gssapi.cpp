#include "socks5/gssapi.hpp"

#include <dlfcn.h>
#include <gssapi/gssapi.h>
#include <krb5/krb5.h>

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "socks5/error.hpp"

namespace socks5 {
namespace {

// The GSS-API entry points used, resolved from the library at run time: nothing links
// against Kerberos, so a program that never uses GSSAPI never loads it.
struct Gss {
  decltype(&gss_import_name) import_name;
  decltype(&gss_release_name) release_name;
  decltype(&gss_init_sec_context) init_sec_context;
  decltype(&gss_delete_sec_context) delete_sec_context;
  decltype(&gss_release_buffer) release_buffer;
  decltype(&gss_wrap) wrap;
  decltype(&gss_unwrap) unwrap;
  decltype(&gss_wrap_size_limit) wrap_size_limit;
  decltype(&gss_export_sec_context) export_sec_context;
  decltype(&gss_import_sec_context) import_sec_context;
  decltype(&gss_display_status) display_status;
};

// Object identifiers (RFC 2743, RFC 1964), spelled out so that no data symbol of the library
// is needed: host-based service name 1.2.840.113554.1.2.1.4, Kerberos principal name
// 1.2.840.113554.1.2.2.1, Kerberos 5 mechanism 1.2.840.113554.1.2.2.
char kHostbasedOid[] = "\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04";
char kPrincipalOid[] = "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";
char kKrb5MechOid[] = "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
// SPNEGO 1.3.6.1.5.5.2 (RFC 4178), the mechanism of HTTP Negotiate (RFC 4559).
char kSpnegoOid[] = "\x2b\x06\x01\x05\x05\x02";
gss_OID_desc kSpnego{6, kSpnegoOid};
gss_OID_desc kHostbased{10, kHostbasedOid};
gss_OID_desc kPrincipal{10, kPrincipalOid};
gss_OID_desc kKrb5Mech{9, kKrb5MechOid};

std::atomic<const char*> g_library{"libgssapi_krb5.so.2"};

template <typename F>
bool resolve(void* lib, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  return f != nullptr;
}

const Gss* load() noexcept {
  // Made once, never destroyed (no exit-time destructor: a dial may run during exit).
  static const Gss* const gss = []() -> const Gss* {
    void* lib = dlopen(g_library.load(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    auto* g = new Gss{};
    const bool ok = resolve(lib, "gss_import_name", g->import_name) &&
                    resolve(lib, "gss_release_name", g->release_name) &&
                    resolve(lib, "gss_init_sec_context", g->init_sec_context) &&
                    resolve(lib, "gss_delete_sec_context", g->delete_sec_context) &&
                    resolve(lib, "gss_release_buffer", g->release_buffer) &&
                    resolve(lib, "gss_wrap", g->wrap) && resolve(lib, "gss_unwrap", g->unwrap) &&
                    resolve(lib, "gss_wrap_size_limit", g->wrap_size_limit) &&
                    resolve(lib, "gss_export_sec_context", g->export_sec_context) &&
                    resolve(lib, "gss_import_sec_context", g->import_sec_context) &&
                    resolve(lib, "gss_display_status", g->display_status);
    if (!ok) {
      delete g;
      return nullptr;
    }
    return g;
  }();
  return gss;
}

std::string& last_status() {
  thread_local std::string text;
  return text;
}

// Appends the library's messages for one status value of the given type.
void display(const Gss& gss, OM_uint32 value, int type, std::string& out) {
  OM_uint32 context = 0;
  do {
    OM_uint32 minor = 0;
    gss_buffer_desc msg{0, nullptr};
    if (GSS_ERROR(gss.display_status(&minor, value, type, &kKrb5Mech, &context, &msg))) break;
    if (!out.empty()) out += ": ";
    out.append(static_cast<const char*>(msg.value), msg.length);
    gss.release_buffer(&minor, &msg);
  } while (context != 0);
}

// Records the library's words and classifies the failure: the cases a user can act on get
// their own codes (and so their own one-line advice).
std::error_code failure(const Gss& gss, OM_uint32 major, OM_uint32 minor) {
  std::string& text = last_status();
  text.clear();
  display(gss, major, GSS_C_GSS_CODE, text);
  if (minor != 0) display(gss, minor, GSS_C_MECH_CODE, text);
  const auto m = static_cast<krb5_error_code>(minor);
  // Checked first: MIT reports an unreachable KDC as "no credentials" too.
  if (m == KRB5_KDC_UNREACH || m == KRB5_REALM_UNKNOWN) return Errc::gssapi_failed;
  if (GSS_ROUTINE_ERROR(major) == GSS_S_NO_CRED || m == KRB5_FCC_NOFILE || m == KRB5_CC_NOTFOUND ||
      m == KRB5KRB_AP_ERR_TKT_EXPIRED) {
    return Errc::gssapi_no_credentials;
  }
  if (m == KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN) return Errc::gssapi_unknown_service;
  if (m == KRB5KRB_AP_ERR_SKEW) return Errc::gssapi_clock_skew;
  // Through SPNEGO (HTTP Negotiate) the mechanism's minor code reaches us mapped to a number
  // of the GSS-API library's own; its words are the Kerberos library's.
  if (text.find("not found in Kerberos database") != std::string::npos) {
    return Errc::gssapi_unknown_service;
  }
  if (text.find("Clock skew too great") != std::string::npos) return Errc::gssapi_clock_skew;
  if (text.find("No Kerberos credentials available") != std::string::npos ||
      text.find("No credentials cache found") != std::string::npos ||
      text.find("Ticket expired") != std::string::npos) {
    return Errc::gssapi_no_credentials;
  }
  return Errc::gssapi_failed;
}

// A buffer the library allocated, released on scope exit.
class LibBuffer {
 public:
  explicit LibBuffer(const Gss& gss) : gss_(gss) {}
  ~LibBuffer() {
    OM_uint32 minor = 0;
    if (buf.value != nullptr) gss_.release_buffer(&minor, &buf);
  }
  LibBuffer(const LibBuffer&) = delete;
  LibBuffer& operator=(const LibBuffer&) = delete;
  ByteView view() const {
    return {static_cast<const std::uint8_t*>(buf.value), static_cast<std::size_t>(buf.length)};
  }
  gss_buffer_desc buf{0, nullptr};

 private:
  const Gss& gss_;
};

gss_buffer_desc input(ByteView v) {
  return gss_buffer_desc{v.size(), const_cast<std::uint8_t*>(v.data())};
}

class Context final : public GssProtection {
 public:
  Context(const Gss& gss, gss_ctx_id_t ctx, GssLevel level) : gss_(gss), ctx_(ctx), level_(level) {
    OM_uint32 minor = 0;
    OM_uint32 max = 0;
    const int conf = level == GssLevel::confidentiality ? 1 : 0;
    if (GSS_ERROR(gss_.wrap_size_limit(&minor, ctx_, conf, GSS_C_QOP_DEFAULT, 0xFFFF, &max)) ||
        max == 0) {
      max = 0xFFFF - 128;  // more than any Kerberos 5 token adds
    }
    max_plain_ = max;
  }
  ~Context() override {
    OM_uint32 minor = 0;
    if (ctx_ != GSS_C_NO_CONTEXT) gss_.delete_sec_context(&minor, &ctx_, GSS_C_NO_BUFFER);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  GssLevel level() const noexcept override { return level_; }
  std::size_t max_plain() const noexcept override { return max_plain_; }
  void set_datagram(bool datagram) noexcept override { datagram_ = datagram; }

  Result<void> wrap(ByteView plain, Bytes& out) override {
    if (ctx_ == GSS_C_NO_CONTEXT) return fail(Errc::invalid_argument);
    const int conf = level_ == GssLevel::confidentiality ? 1 : 0;
    // An empty message is still one token (a zero-length datagram).
    std::size_t off = 0;
    do {
      const std::size_t n = std::min(plain.size() - off, max_plain_);
      OM_uint32 minor = 0;
      int conf_state = 0;
      gss_buffer_desc in = input(plain.subspan(off, n));
      LibBuffer token(gss_);
      const OM_uint32 major =
          gss_.wrap(&minor, ctx_, conf, GSS_C_QOP_DEFAULT, &in, &conf_state, &token.buf);
      if (GSS_ERROR(major)) return fail(failure(gss_, major, minor));
      if (conf != 0 && conf_state == 0) return fail(Errc::gssapi_failed);
      auto r = wire::encode_gss_frame(wire::GssMessageType::encapsulated, token.view(), out);
      if (!r) return r;
      off += n;
    } while (off < plain.size());
    return {};
  }

  Result<std::size_t> unwrap(ByteView in, Bytes& plain) override {
    if (ctx_ == GSS_C_NO_CONTEXT) return fail(Errc::invalid_argument);
    auto f = wire::decode_gss_frame(in);
    if (!f) return fail(f.error());
    if (!*f) return std::size_t{0};
    const wire::GssFrame& frame = (*f)->value;
    if (frame.type == wire::GssMessageType::abort) return fail(Errc::auth_rejected);
    if (frame.type != wire::GssMessageType::encapsulated) return fail(Errc::bad_message_type);
    OM_uint32 minor = 0;
    int conf_state = 0;
    gss_qop_t qop = 0;
    gss_buffer_desc token = input(frame.token);
    LibBuffer out(gss_);
    const OM_uint32 major = gss_.unwrap(&minor, ctx_, &token, &out.buf, &conf_state, &qop);
    if (GSS_ERROR(major)) {
      failure(gss_, major, minor);
      return fail(Errc::gssapi_bad_token);
    }
    const OM_uint32 order =
        major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN);
    // Datagrams may be lost, reordered or repeated (and a peeked one is unwrapped twice):
    // only a stream must arrive in sequence.
    if (!datagram_ && order != 0) {
      return fail(Errc::gssapi_bad_token);  // a stream never loses or reorders
    }
    // At confidentiality every token must be sealed: an integrity-only token from the network
    // would be a downgrade (RFC 1961 §5: conf_req_flag MUST be TRUE at level 2).
    if (level_ == GssLevel::confidentiality && conf_state == 0) {
      return fail(Errc::gssapi_bad_token);
    }
    const ByteView v = out.view();
    plain.insert(plain.end(), v.begin(), v.end());
    return (*f)->size;
  }

  Result<Bytes> export_context() override {
    if (ctx_ == GSS_C_NO_CONTEXT) return fail(Errc::invalid_argument);
    OM_uint32 minor = 0;
    LibBuffer token(gss_);
    const OM_uint32 major = gss_.export_sec_context(&minor, &ctx_, &token.buf);
    if (GSS_ERROR(major)) return fail(failure(gss_, major, minor));
    ctx_ = GSS_C_NO_CONTEXT;
    const ByteView v = token.view();
    return Bytes(v.begin(), v.end());
  }

 private:
  const Gss& gss_;
  gss_ctx_id_t ctx_;
  GssLevel level_;
  std::size_t max_plain_ = 0;
  bool datagram_ = false;
};

}  // namespace

std::string_view gss_level_name(GssLevel level) noexcept {
  switch (level) {
    case GssLevel::clear: return "clear";
    case GssLevel::integrity: return "integrity";
    case GssLevel::confidentiality: return "confidentiality";
  }
  return "unknown";
}

std::string gssapi_target(const GssapiOptions& options, std::string_view proxy_host) {
  if (options.service.empty()) return "rcmd@" + std::string(proxy_host);
  if (options.service.find('/') != std::string::npos ||
      options.service.find('@') != std::string::npos) {
    return options.service;
  }
  return options.service + "@" + std::string(proxy_host);
}

std::string negotiate_target(const GssapiOptions& options, std::string_view proxy_host) {
  if (options.service.empty()) return "HTTP@" + std::string(proxy_host);
  return gssapi_target(options, proxy_host);
}

Result<Bytes> negotiate_token(const GssapiOptions& options, std::string_view proxy_host) {
  const Gss* gss = load();
  if (gss == nullptr) {
    last_status() = std::string("cannot load ") + g_library.load() + ": " + dlerror();
    return fail(Errc::gssapi_unavailable);
  }
  const std::string name = negotiate_target(options, proxy_host);
  const bool principal = name.find('/') != std::string::npos;
  OM_uint32 minor = 0;
  gss_name_t target = GSS_C_NO_NAME;
  gss_buffer_desc text{name.size(), const_cast<char*>(name.data())};
  OM_uint32 major = gss->import_name(&minor, &text, principal ? &kPrincipal : &kHostbased, &target);
  if (GSS_ERROR(major)) return fail(failure(*gss, major, minor));
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  LibBuffer output(*gss);
  if (options.library_scope != nullptr) options.library_scope(true);
  major = gss->init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx, target, &kSpnego, 0,
                                GSS_C_INDEFINITE, GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER,
                                nullptr, &output.buf, nullptr, nullptr);
  if (options.library_scope != nullptr) options.library_scope(false);
  const std::error_code ec = GSS_ERROR(major) ? failure(*gss, major, minor) : std::error_code();
  OM_uint32 ignored = 0;
  if (ctx != GSS_C_NO_CONTEXT) gss->delete_sec_context(&ignored, &ctx, GSS_C_NO_BUFFER);
  gss->release_name(&ignored, &target);
  if (ec) return fail(ec);
  const ByteView token = output.view();
  if (token.empty()) return fail(Errc::gssapi_failed);
  return Bytes(token.begin(), token.end());
}

bool gssapi_available() noexcept {
  return load() != nullptr;
}

const std::string& gssapi_last_status() {
  return last_status();
}

void gssapi_use_library(const char* soname) noexcept {
  g_library.store(soname);
}

Result<std::unique_ptr<GssProtection>> import_gss_protection(ByteView exported, GssLevel level) {
  const Gss* gss = load();
  if (gss == nullptr) return fail(Errc::gssapi_unavailable);
  OM_uint32 minor = 0;
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  gss_buffer_desc in = input(exported);
  const OM_uint32 major = gss->import_sec_context(&minor, &in, &ctx);
  if (GSS_ERROR(major)) return fail(failure(*gss, major, minor));
  return std::unique_ptr<GssProtection>(std::make_unique<Context>(*gss, ctx, level));
}

Result<void> ProtectedStream::write(ByteView data, Deadline deadline) {
  Bytes tokens;
  auto w = protection_->wrap(data, tokens);
  if (!w) return w;
  Stream s(fd_, *sys_);
  return s.write_all(tokens, deadline);
}

Result<std::size_t> ProtectedStream::read(Bytes& out, Deadline deadline) {
  Stream s(fd_, *sys_);
  for (;;) {
    const std::size_t before = out.size();
    auto used = protection_->unwrap(in_, out);
    if (!used) return fail(used.error());
    if (*used > 0) {
      in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(*used));
      // An empty token carries nothing: go on to the next one.
      if (out.size() > before) return out.size() - before;
      continue;
    }
    auto ready = s.wait(POLLIN, deadline);
    if (!ready) return fail(ready.error());
    std::uint8_t buf[16384];
    const ssize_t n = sys_->recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) {
      if (!in_.empty()) return fail(Errc::connection_closed);  // ended inside a token
      return std::size_t{0};
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return fail(std::error_code(errno, std::generic_category()));
    }
    in_.insert(in_.end(), buf, buf + n);
  }
}

// ---------------------------------------------------------------------------------------------
// The method.

struct GssapiAuth::State {
  enum class Step { context, level, done };
  GssapiOptions options;
  std::string host;
  const Gss* gss = nullptr;
  gss_name_t target = GSS_C_NO_NAME;
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  Step step = Step::context;
  bool complete = false;  // gss_init_sec_context said GSS_S_COMPLETE
  std::unique_ptr<Context> protection;

  ~State() {
    OM_uint32 minor = 0;
    if (gss == nullptr) return;
    if (ctx != GSS_C_NO_CONTEXT) gss->delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
    if (target != GSS_C_NO_NAME) gss->release_name(&minor, &target);
  }

  // One call of the context loop (RFC 1961 §3.3): `token` from the server, or none at first.
  Result<void> init(const gss_buffer_desc* token, Bytes& out) {
    OM_uint32 minor = 0;
    LibBuffer output(*gss);
    // Mutual authentication: the server proves itself with its AP-REP (RFC 1961 §3.2).
    const OM_uint32 flags = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG | GSS_C_SEQUENCE_FLAG |
                            GSS_C_INTEG_FLAG |
                            (options.level == GssLevel::confidentiality ? GSS_C_CONF_FLAG : 0);
    if (options.library_scope != nullptr) options.library_scope(true);
    const OM_uint32 major = gss->init_sec_context(
        &minor, GSS_C_NO_CREDENTIAL, &ctx, target, &kKrb5Mech, flags, GSS_C_INDEFINITE,
        GSS_C_NO_CHANNEL_BINDINGS, const_cast<gss_buffer_desc*>(token), nullptr, &output.buf,
        nullptr, nullptr);
    if (options.library_scope != nullptr) options.library_scope(false);
    if (GSS_ERROR(major)) return fail(failure(*gss, major, minor));
    if (output.buf.length > 0) {
      auto r = wire::encode_gss_frame(wire::GssMessageType::token, output.view(), out);
      if (!r) return r;
    }
    complete = (major & GSS_S_CONTINUE_NEEDED) == 0;
    if (complete) return send_level(out);
    return {};
  }

  // RFC 1961 §4: one octet, wrapped for integrity only (conf_req_flag = 0) whatever level is
  // asked for.
  Result<void> send_level(Bytes& out) {
    OM_uint32 minor = 0;
    int conf_state = 0;
    std::uint8_t octet = static_cast<std::uint8_t>(options.level);
    gss_buffer_desc in{1, &octet};
    LibBuffer token(*gss);
    const OM_uint32 major =
        gss->wrap(&minor, ctx, 0, GSS_C_QOP_DEFAULT, &in, &conf_state, &token.buf);
    if (GSS_ERROR(major)) return fail(failure(*gss, major, minor));
    step = Step::level;
    return wire::encode_gss_frame(wire::GssMessageType::protection, token.view(), out);
  }

  Result<bool> on_level(ByteView token) {
    OM_uint32 minor = 0;
    int conf_state = 0;
    gss_qop_t qop = 0;
    gss_buffer_desc in = input(token);
    LibBuffer plain(*gss);
    const OM_uint32 major = gss->unwrap(&minor, ctx, &in, &plain.buf, &conf_state, &qop);
    if (GSS_ERROR(major)) {
      failure(*gss, major, minor);
      return fail(Errc::gssapi_bad_token);
    }
    // Check the answer ourselves: a server may echo anything (Dante echoes unknown levels),
    // and it must not choose a level the user did not ask for.
    const ByteView v = plain.view();
    if (v.size() != 1 || v[0] != static_cast<std::uint8_t>(options.level)) {
      last_status() = v.size() == 1 ? "the proxy answered with level " + std::to_string(v[0])
                                    : "the proxy's level message is not one octet";
      return fail(Errc::gssapi_level_refused);
    }
    step = Step::done;
    if (options.level != GssLevel::clear) {
      protection = std::make_unique<Context>(*gss, ctx, options.level);
      ctx = GSS_C_NO_CONTEXT;  // owned by the protection layer now
    }
    return true;
  }
};

GssapiAuth::GssapiAuth(GssapiOptions options, std::string proxy_host)
    : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  state_->host = std::move(proxy_host);
}

GssapiAuth::~GssapiAuth() = default;

Result<bool> GssapiAuth::begin(Bytes& out) {
  State& s = *state_;
  s.gss = load();
  if (s.gss == nullptr) {
    last_status() = std::string("cannot load ") + g_library.load() + ": " + dlerror();
    return fail(Errc::gssapi_unavailable);
  }
  const std::string name = gssapi_target(s.options, s.host);
  // A name with '/' is a Kerberos principal; otherwise a host-based service "service@host".
  const bool principal = name.find('/') != std::string::npos;
  OM_uint32 minor = 0;
  gss_buffer_desc text{name.size(), const_cast<char*>(name.data())};
  const OM_uint32 major =
      s.gss->import_name(&minor, &text, principal ? &kPrincipal : &kHostbased, &s.target);
  if (GSS_ERROR(major)) return fail(failure(*s.gss, major, minor));
  auto r = s.init(GSS_C_NO_BUFFER, out);
  if (!r) return fail(r.error());
  return false;
}

Result<AuthProgress> GssapiAuth::on_input(ByteView in, Bytes& out) {
  State& s = *state_;
  std::size_t used = 0;
  while (s.step != State::Step::done) {
    auto f = wire::decode_gss_frame(in.subspan(used));
    if (!f) return fail(f.error());
    if (!*f) break;
    const wire::GssFrame frame = (*f)->value;
    used += (*f)->size;
    if (frame.type == wire::GssMessageType::abort) {
      return fail(s.step == State::Step::context ? Errc::gssapi_rejected
                                                 : Errc::gssapi_level_refused);
    }
    if (s.step == State::Step::context) {
      if (frame.type != wire::GssMessageType::token) return fail(Errc::bad_message_type);
      gss_buffer_desc token = input(frame.token);
      auto r = s.init(&token, out);
      if (!r) return fail(r.error());
      continue;
    }
    // Level step. A server may still send an empty context token after the context is
    // complete (Dante does when mutual authentication was not asked for): skip it.
    if (frame.type == wire::GssMessageType::token && frame.token.empty()) continue;
    if (frame.type != wire::GssMessageType::protection) return fail(Errc::bad_message_type);
    auto l = s.on_level(frame.token);
    if (!l) return fail(l.error());
  }
  return AuthProgress{used, s.step == State::Step::done};
}

std::unique_ptr<Protection> GssapiAuth::take_protection() {
  return std::move(state_->protection);
}

Errc GssapiAuth::closed_error() const noexcept {
  // Servers close without an abort frame (Dante never sends one): the close itself says
  // which step was refused.
  switch (state_->step) {
    case State::Step::context: return Errc::gssapi_rejected;
    case State::Step::level: return Errc::gssapi_level_refused;
    case State::Step::done: break;
  }
  return Errc::connection_closed;
}

}  // namespace socks5
