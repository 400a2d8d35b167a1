#pragma once
// THE table of settings. Each row names one setting once: its SOCKSIFY_* environment
// variable (how a socksified process and its children receive it), its configuration-file
// key(s) and its command-line flags. The wrapper's command-line parser and help,
// the configuration file reader, the environment reader, `socksify check`, and the tests that
// keep socksify(1) and socksify.conf(5) complete all iterate this one table.
#include <span>
#include <string>
#include <string_view>

namespace socksify::settings {

/// How a setting's value is written.
enum class ValueKind : unsigned char {
  text,     ///< one string
  list,     ///< repeatable on the command line; a list in the file; joined in the variable
  integer,  ///< a decimal integer in [min, max]
  choice,   ///< one of `choices` ("a|b|c")
  count,    ///< a repeatable flag (-v, -vv): 1 = first choice, 2 = second...
  flag,     ///< an on/off setting: the flag sets it to 1; the file takes true or false
  preset,   ///< a flag that sets another row's variable: `choices` is "VARIABLE=VALUE"
  path,     ///< a file name (made absolute for children that change directory)
  secret,   ///< read from a file named on the command line or in the file, never from argv
};

/// One setting.
struct Option {
  std::string_view name;      ///< short name used in messages and help
  std::string_view env;       ///< SOCKSIFY_* variable ("" = none)
  std::string_view key;       ///< configuration-file key ("" = none)
  std::string_view list_key;  ///< the file key that takes a list of strings ("" = none)
  std::string_view flags;     ///< command-line flags, comma-separated: "-x,--proxy" ("" = none)
  ValueKind kind;
  std::string_view choices;  ///< choice/count: "a|b|c"
  long min = 0, max = 0;     ///< integer range
  char join = ' ';           ///< list: separator of the values in the variable
  std::string_view metavar;
  std::string_view help;
};

/// Every setting, in the order socksify --help lists them.
std::span<const Option> options() noexcept;

/// The row whose variable is `env`, or nullptr.
const Option* option_by_env(std::string_view env) noexcept;
/// The row with file key (or list key) `key`, or nullptr.
const Option* option_by_key(std::string_view key) noexcept;
/// The row with command-line flag `flag` ("-x", "--proxy"), or nullptr.
const Option* option_by_flag(std::string_view flag) noexcept;

/// The long flag of a row ("--proxy"), or "" when it has none.
std::string_view long_flag(const Option& o) noexcept;

/// True if `value` is acceptable for a choice, count or integer row (other kinds: true; their
/// values are checked where they are parsed).
bool valid_value(const Option& o, std::string_view value) noexcept;
/// What a row accepts, for messages: "expected remote or local", "expected an integer from 1
/// to 3600000".
std::string expected_text(const Option& o);

}  // namespace socksify::settings
