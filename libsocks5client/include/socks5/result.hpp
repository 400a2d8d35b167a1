#pragma once
// A small std::expected look-alike (same member names). std::expected itself does not build
// with clang 14 + libstdc++ 12, and clang is needed for libFuzzer.
#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace socks5 {

/// Wraps an error value to construct a failed Result (like std::unexpected).
template <class E>
struct Unexpected {
  E value;
};

/// Builds an Unexpected from an error value.
template <class E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return {std::forward<E>(e)};
}

/// Either a T or an error E. Accessing the wrong alternative is a logic error (asserted).
template <class T, class E = std::error_code>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  template <class U = T, class = std::enable_if_t<std::is_constructible_v<T, U&&>>>
  Result(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}  // NOLINT: implicit by design
  template <class G>
  Result(Unexpected<G> u) : v_(std::in_place_index<1>, E(std::move(u.value))) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  const E& error() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, E> v_;
};

/// Result<void>: success or an error.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  template <class G>
  Result(Unexpected<G> u) : e_(std::move(u.value)), ok_(false) {}  // NOLINT

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  void value() const { assert(ok_); }
  const E& error() const& {
    assert(!ok_);
    return e_;
  }

 private:
  E e_{};
  bool ok_ = true;
};

/// Shorthand for a failed Result<..., std::error_code>.
template <class Enum, class = std::enable_if_t<std::is_error_code_enum_v<Enum>>>
Unexpected<std::error_code> fail(Enum e) {
  return {std::error_code(e)};
}
inline Unexpected<std::error_code> fail(std::error_code ec) {
  return {ec};
}
/// A failure carrying an errno value (generic category).
inline Unexpected<std::error_code> fail_errno(int err) {
  return {std::error_code(err, std::generic_category())};
}

}  // namespace socks5
