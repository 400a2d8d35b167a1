#pragma once
// Answers for DNS queries a program sends a local stub resolver itself (dig @127.0.0.53,
// c-ares, node, stub clients) in remote-DNS mode: the name must not reach the local network,
// so the library answers A and AAAA questions with the name's fake address (the same one
// getaddrinfo() would give) and REFUSED for every other type. Pure: unit-tested.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace socksify::shim {

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

}  // namespace socksify::shim
