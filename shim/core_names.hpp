#pragma once
// The preloaded library is built on the core (core/: policy, fake DNS, DNS answers, the
// connector, UDP reassembly): inside the shim its names are used as the shim's own.
#include "connector.hpp"
#include "dns_answer.hpp"
#include "fake_dns.hpp"
#include "policy.hpp"
#include "udp_in.hpp"

namespace socksify::shim {
using namespace socksify::core;  // NOLINT(google-build-using-namespace)
}  // namespace socksify::shim
