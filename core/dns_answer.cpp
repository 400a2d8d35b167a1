#include "dns_answer.hpp"

#include <cstring>

#include "fake_dns.hpp"
#include "policy.hpp"

namespace socksify::core {
namespace {

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeAAAA = 28;
constexpr std::uint32_t kTtl = 5;

std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v & 0xFF);
}

// Where the question section ends (after QTYPE and QCLASS), or 0.
std::size_t question_end(std::span<const std::uint8_t> q) {
  std::size_t i = 12;
  while (i < q.size() && q[i] != 0) {
    if ((q[i] & 0xC0) != 0) return 0;  // no compression in a question
    i += 1 + std::size_t{q[i]};
  }
  if (i >= q.size()) return 0;
  i += 1 + 4;
  return i <= q.size() ? i : 0;
}

}  // namespace

bool parse_question(std::span<const std::uint8_t> q, char (&name)[256], std::uint16_t& qtype,
                    std::uint16_t& qclass) noexcept {
  if (q.size() < 12 + 1 + 4) return false;
  const bool response = (q[2] & 0x80) != 0;
  const int opcode = (q[2] >> 3) & 0x0F;
  if (response || opcode != 0 || be16(&q[4]) != 1) return false;
  const std::size_t end = question_end(q);
  if (end == 0) return false;
  std::size_t n = 0;
  for (std::size_t i = 12; q[i] != 0; i += 1 + std::size_t{q[i]}) {
    if (n != 0) {
      if (n + 1 >= sizeof name) return false;
      name[n++] = '.';
    }
    for (std::size_t k = 0; k < q[i]; ++k) {
      if (n + 1 >= sizeof name) return false;
      const char c = static_cast<char>(q[i + 1 + k]);
      name[n++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  name[n] = '\0';
  qtype = be16(&q[end - 4]);
  qclass = be16(&q[end - 2]);
  return true;
}

std::size_t build_answer(std::span<const std::uint8_t> q, std::uint16_t qtype, const StubAnswer& a,
                         std::span<std::uint8_t> out) noexcept {
  const std::size_t end = question_end(q);
  if (end == 0 || out.size() < end) return 0;
  std::memcpy(out.data(), q.data(), end);
  const std::uint8_t* rdata = nullptr;
  std::uint16_t rdlen = 0;
  if (!a.refused && qtype == kTypeA && a.v4 != nullptr) {
    rdata = a.v4;
    rdlen = 4;
  } else if (!a.refused && qtype == kTypeAAAA && a.v6 != nullptr) {
    rdata = a.v6;
    rdlen = 16;
  }
  // QR, the query's opcode and RD; RA; RCODE 0 (NOERROR, with or without a record) or 5.
  out[2] = static_cast<std::uint8_t>(0x80 | (q[2] & 0x79));
  out[3] = static_cast<std::uint8_t>(0x80 | (a.refused ? 5 : 0));
  put16(&out[4], 1);
  put16(&out[6], rdata != nullptr ? 1 : 0);
  put16(&out[8], 0);
  put16(&out[10], 0);
  std::size_t n = end;
  if (rdata != nullptr) {
    if (out.size() < n + 12 + rdlen) return 0;
    out[n++] = 0xC0;  // the name: a pointer to the question's
    out[n++] = 0x0C;
    put16(&out[n], qtype);
    put16(&out[n + 2], 1);  // IN
    out[n + 4] = 0;
    out[n + 5] = 0;
    put16(&out[n + 6], static_cast<std::uint16_t>(kTtl));
    put16(&out[n + 8], rdlen);
    std::memcpy(&out[n + 10], rdata, rdlen);
    n += 10 + rdlen;
  }
  return n;
}

StubReply answer_stub_query(const settings::Config& config, FakeDns* dns,
                            std::span<const std::uint8_t> query,
                            std::span<std::uint8_t> out) noexcept {
  StubReply r;
  std::uint16_t qclass = 0;
  if (!parse_question(query, r.name, r.qtype, qclass)) return r;
  Destination d;
  d.name = r.name;
  const Verdict v = classify(config, Operation::resolve, d, Context{});
  if (v.action == Action::direct) {
    r.kind = StubReply::Kind::pass_on;
    return r;
  }
  StubAnswer answer;
  std::uint8_t v4[4], v6[16];
  if (qclass != 1 || (r.qtype != kTypeA && r.qtype != kTypeAAAA)) {
    answer.refused = true;  // SOCKS can carry names, not other records
  } else if (v.action == Action::loopback) {
    static constexpr std::uint8_t kLo4[4] = {127, 0, 0, 1};
    static constexpr std::uint8_t kLo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    answer.v4 = kLo4;
    answer.v6 = kLo6;
  } else if (dns != nullptr) {
    if (const auto fake = dns->lookup_or_add(r.name)) {
      if (fake->has_v4()) {
        dns->address4(*fake, v4);
        answer.v4 = v4;
      }
      dns->address6(*fake, v6);
      answer.v6 = v6;
    } else {
      answer.refused = true;  // the table is full
    }
  }
  r.length = build_answer(query, r.qtype, answer, out);
  r.kind = StubReply::Kind::answered;
  return r;
}

}  // namespace socksify::core
