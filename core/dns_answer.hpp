#pragma once
// Answers for DNS queries a program sends a local stub resolver itself (dig @127.0.0.53,
// c-ares, node, stub clients) in remote-DNS mode: the name must not reach the local network,
// so the library answers A and AAAA questions with the name's fake address (the same one
// getaddrinfo() would give) and REFUSED for every other type. Pure: unit-tested.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "config.hpp"

namespace socksify::core {

class FakeDns;

/// What to answer for one name: the addresses to put in A / AAAA records (nullptr: none).
struct StubAnswer {
  bool refused = false;              ///< answer REFUSED (a type or name not answered here)
  const std::uint8_t* v4 = nullptr;  ///< 4 octets
  const std::uint8_t* v6 = nullptr;  ///< 16 octets
};

/// The question of a standard query: its name (lower case, no trailing dot, into `name`),
/// type and class; false for anything else (a response, another opcode, several questions,
/// compression in the question, a truncated message).
bool parse_question(std::span<const std::uint8_t> query, char (&name)[256], std::uint16_t& qtype,
                    std::uint16_t& qclass) noexcept;

/// The response to `query` (as parse_question() read it) into `out`: same ID and question,
/// RD copied, RA set, the records `answer` gives (TTL 5 s). Returns its length, 0 when `out`
/// is too small.
std::size_t build_answer(std::span<const std::uint8_t> query, std::uint16_t qtype,
                         const StubAnswer& answer, std::span<std::uint8_t> out) noexcept;

/// What answer_stub_query() did with a query.
struct StubReply {
  enum class Kind : std::uint8_t {
    answered,   ///< `length` octets of response in `out`
    pass_on,    ///< a name a direct rule keeps local: send the query to the real server
    not_query,  ///< not a standard query: dropped
  };
  Kind kind = Kind::not_query;
  std::size_t length = 0;
  char name[256] = {};
  std::uint16_t qtype = 0;
};

/// The answer to a DNS query meant for a local or configured name server, in remote-DNS mode,
/// as the policy says (one implementation for the shim's stub hook and the supervisor's DNS
/// responder): the name's fake addresses from `dns` (A, AAAA), loopback for localhost names,
/// REFUSED for other types or a full table, or "pass on" for a name a direct rule keeps
/// local.
StubReply answer_stub_query(const settings::Config& config, FakeDns* dns,
                            std::span<const std::uint8_t> query,
                            std::span<std::uint8_t> out) noexcept;

}  // namespace socksify::core
