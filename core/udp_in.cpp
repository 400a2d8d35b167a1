#include "udp_in.hpp"

#include <sys/socket.h>

#include <cstring>
#include <string_view>

#include "policy.hpp"

namespace socksify::core {

void Reassembly::abandon() noexcept {
  data_.clear();
  last_ = 0;
}

Reassembly::Outcome Reassembly::feed(std::uint8_t frag, const socks5::Address& source,
                                     socks5::ByteView data, bool peek, Clock::time_point now,
                                     std::vector<std::uint8_t>& out, socks5::Address& out_source) {
  const int position = frag & 0x7F;
  const bool end = (frag & 0x80) != 0;
  if (last_ > 0 && now - started_ > kTimeout) abandon();
  // Anything but the next position abandons the sequence; only position 1 starts one.
  if (position == 0 || position != last_ + 1) {
    abandon();
    if (position != 1) return Outcome::dropped;
  }
  if (position == 1) {
    started_ = now;
    source_ = source;
  } else if (!(source == source_)) {
    abandon();  // one datagram's fragments all come from one source
    return Outcome::dropped;
  }
  if (data_.size() + data.size() > kMaxPayload) {
    abandon();
    return Outcome::dropped;
  }
  if (!end) {
    data_.insert(data_.end(), data.begin(), data.end());
    last_ = position;
    return Outcome::pending;
  }
  out.assign(data_.begin(), data_.end());
  out.insert(out.end(), data.begin(), data.end());
  out_source = source_;
  if (!peek) abandon();
  return Outcome::complete;
}

namespace {

// The same host name, case-insensitively, a final dot aside.
bool same_name(std::string_view a, std::string_view b) {
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);
  if (!b.empty() && b.back() == '.') b.remove_suffix(1);
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

bool from_peer(PeerFilter& peer, const socks5::Address& source) noexcept {
  if (!peer.active) return true;
  if (source.port() != peer.port) return false;
  if (peer.name[0] == '\0') {
    if (!source.is_ip()) return false;
    // v4-mapped IPv6 compares as IPv4, as the peer was normalised.
    Destination d;
    sockaddr_storage ss{};
    const socklen_t len = source.to_sockaddr(ss);
    if (len == 0 || !destination_from(reinterpret_cast<sockaddr*>(&ss), len, d)) return false;
    return d.family == peer.family &&
           std::memcmp(d.ip.data(), peer.ip.data(), d.family == AF_INET ? 4 : 16) == 0;
  }
  if (!source.is_ip()) return same_name(source.host(), peer.name.data());
  if (!peer.learned) {
    peer.seen = source;
    peer.learned = true;
    return true;
  }
  return peer.seen == source;
}

}  // namespace socksify::core
