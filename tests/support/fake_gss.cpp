// A scripted GSS-API library for unit tests and fuzzers: the same entry points as MIT's
// libgssapi_krb5, with behaviour chosen by the target name and tokens simple enough to write
// by hand. Loaded with socks5::gssapi_use_library() instead of the real one.
//
//   target "ok@h"        init: token "AP-REQ" (CONTINUE); with input "AP-REP": COMPLETE.
//   target "onestep@h"   init: token "AP-REQ" and COMPLETE at once (no mutual authentication).
//   target "nocreds@h"   init fails: GSS_S_NO_CRED (what MIT says without a ticket).
//   target "unknown@h"   init fails: minor KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN.
//   target "skew@h"      init fails: minor KRB5KRB_AP_ERR_SKEW.
//   wrap:   'W', conf_state (0/1), then the message.
//   unwrap: the same; anything else is GSS_S_DEFECTIVE_TOKEN.
//   export: "CTX"; import accepts only that.

#include <gssapi/gssapi.h>
#include <krb5/krb5.h>

#include <cstdlib>
#include <cstring>

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

struct fake_ctx {
  int complete;
};

void set_buffer(gss_buffer_t b, const void* data, size_t len) {
  b->length = len;
  b->value = len ? std::malloc(len) : nullptr;
  if (len) std::memcpy(b->value, data, len);
}

bool name_is(gss_name_t name, const char* prefix) {
  return name != nullptr &&
         std::strncmp(reinterpret_cast<const char*>(name), prefix, std::strlen(prefix)) == 0;
}

}  // namespace

EXPORT OM_uint32 gss_import_name(OM_uint32* minor, gss_buffer_t text, gss_OID type,
                                 gss_name_t* out) {
  (void)type;
  char* copy = static_cast<char*>(std::malloc(text->length + 1));
  std::memcpy(copy, text->value, text->length);
  copy[text->length] = '\0';
  *out = reinterpret_cast<gss_name_t>(copy);
  *minor = 0;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_release_name(OM_uint32* minor, gss_name_t* name) {
  std::free(*name);
  *name = GSS_C_NO_NAME;
  *minor = 0;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_init_sec_context(OM_uint32* minor, gss_cred_id_t cred, gss_ctx_id_t* ctx,
                                      gss_name_t target, gss_OID mech, OM_uint32 flags,
                                      OM_uint32 time, gss_channel_bindings_t bindings,
                                      gss_buffer_t input, gss_OID* actual_mech, gss_buffer_t output,
                                      OM_uint32* ret_flags, OM_uint32* time_rec) {
  (void)cred, (void)mech, (void)flags, (void)time, (void)bindings, (void)actual_mech;
  (void)ret_flags, (void)time_rec;
  *minor = 0;
  output->length = 0;
  output->value = nullptr;
  if (name_is(target, "nocreds@")) return GSS_S_NO_CRED;
  if (name_is(target, "unknown@")) {
    *minor = static_cast<OM_uint32>(KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN);
    return GSS_S_FAILURE;
  }
  if (name_is(target, "skew@")) {
    *minor = static_cast<OM_uint32>(KRB5KRB_AP_ERR_SKEW);
    return GSS_S_FAILURE;
  }
  if (*ctx == GSS_C_NO_CONTEXT) {
    auto* c = static_cast<fake_ctx*>(std::calloc(1, sizeof(fake_ctx)));
    *ctx = reinterpret_cast<gss_ctx_id_t>(c);
    set_buffer(output, "AP-REQ", 6);
    if (name_is(target, "onestep@")) {
      c->complete = 1;
      return GSS_S_COMPLETE;
    }
    return GSS_S_CONTINUE_NEEDED;
  }
  auto* c = reinterpret_cast<fake_ctx*>(*ctx);
  if (input == GSS_C_NO_BUFFER || input->length != 6 ||
      std::memcmp(input->value, "AP-REP", 6) != 0) {
    return GSS_S_DEFECTIVE_TOKEN;
  }
  c->complete = 1;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_delete_sec_context(OM_uint32* minor, gss_ctx_id_t* ctx, gss_buffer_t out) {
  (void)out;
  std::free(*ctx);
  *ctx = GSS_C_NO_CONTEXT;
  *minor = 0;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_release_buffer(OM_uint32* minor, gss_buffer_t b) {
  std::free(b->value);
  b->value = nullptr;
  b->length = 0;
  *minor = 0;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_wrap(OM_uint32* minor, gss_ctx_id_t ctx, int conf, gss_qop_t qop,
                          gss_buffer_t in, int* conf_state, gss_buffer_t out) {
  (void)ctx, (void)qop;
  *minor = 0;
  out->length = in->length + 2;
  auto* p = static_cast<unsigned char*>(std::malloc(out->length));
  out->value = p;
  p[0] = 'W';
  p[1] = conf ? 1 : 0;
  if (in->length) std::memcpy(p + 2, in->value, in->length);
  if (conf_state) *conf_state = conf ? 1 : 0;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_unwrap(OM_uint32* minor, gss_ctx_id_t ctx, gss_buffer_t in, gss_buffer_t out,
                            int* conf_state, gss_qop_t* qop) {
  (void)ctx;
  *minor = 0;
  out->length = 0;
  out->value = nullptr;
  const auto* p = static_cast<const unsigned char*>(in->value);
  if (in->length < 2 || p[0] != 'W' || p[1] > 1) return GSS_S_DEFECTIVE_TOKEN;
  if (conf_state) *conf_state = p[1];
  if (qop) *qop = 0;
  set_buffer(out, p + 2, in->length - 2);
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_wrap_size_limit(OM_uint32* minor, gss_ctx_id_t ctx, int conf, gss_qop_t qop,
                                     OM_uint32 req, OM_uint32* max) {
  (void)ctx, (void)conf, (void)qop;
  *minor = 0;
  *max = req - 2;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_export_sec_context(OM_uint32* minor, gss_ctx_id_t* ctx, gss_buffer_t out) {
  std::free(*ctx);
  *ctx = GSS_C_NO_CONTEXT;
  set_buffer(out, "CTX", 3);
  *minor = 0;
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_import_sec_context(OM_uint32* minor, gss_buffer_t in, gss_ctx_id_t* ctx) {
  *minor = 0;
  if (in->length != 3 || std::memcmp(in->value, "CTX", 3) != 0) return GSS_S_DEFECTIVE_TOKEN;
  auto* c = static_cast<fake_ctx*>(std::calloc(1, sizeof(fake_ctx)));
  c->complete = 1;
  *ctx = reinterpret_cast<gss_ctx_id_t>(c);
  return GSS_S_COMPLETE;
}

EXPORT OM_uint32 gss_display_status(OM_uint32* minor, OM_uint32 value, int type, gss_OID mech,
                                    OM_uint32* context, gss_buffer_t out) {
  (void)mech;
  static const char gss[] = "fake major status";
  static const char mech_text[] = "fake minor status";
  *minor = 0;
  *context = 0;
  if (value == 0) {
    out->length = 0;
    out->value = nullptr;
    return GSS_S_COMPLETE;
  }
  if (type == GSS_C_GSS_CODE) {
    set_buffer(out, gss, sizeof gss - 1);
  } else {
    set_buffer(out, mech_text, sizeof mech_text - 1);
  }
  return GSS_S_COMPLETE;
}
