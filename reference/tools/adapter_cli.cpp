// adapter_cli.cpp: see adapter_cli.h.
#include "adapter_cli.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>

#include "adapter_common.h"

namespace cuframes::adapter {

namespace {

// Checks that `s` is a decimal number in [lo, hi]; returns "" or what is wrong (CLI11's
// validator convention).
std::string CheckNumber(const std::string& s, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  const char* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, v, 10);
  if (s.empty() || ec == std::errc::invalid_argument || ptr != end) {
    return "'" + s + "' is not a decimal number";
  }
  if (ec == std::errc::result_out_of_range || v < lo || v > hi) {
    return "'" + s + "' is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  return "";
}

}  // namespace

Cli::Cli(const std::string& program, const std::string& about)
    : app_(std::make_unique<CLI::App>(about, program)) {}

Cli::~Cli() = default;

void Cli::Number(const std::string& name, uint64_t* v, uint64_t lo, uint64_t hi,
                 const std::string& help) {
  app_->add_option(name, *v, help)
      ->capture_default_str()
      ->check(CLI::Validator([lo, hi](std::string& s) { return CheckNumber(s, lo, hi); }, "", ""));
}

void Cli::Text(const std::string& name, std::string* v, const std::vector<std::string>& allowed,
               const std::string& help, bool required) {
  CLI::Option* o = app_->add_option(name, *v, help);
  if (!required) o->capture_default_str();
  if (!allowed.empty()) o->check(CLI::IsMember(allowed));
  if (required) o->required();
}

void Cli::Flag(const std::string& name, bool* v, const std::string& help) {
  app_->add_flag(name, *v, help);
}

int Cli::Parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app_->exit(e);  // prints the help text to stdout
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s\nRun with --help for the options.\n", app_->get_name().c_str(),
                 e.what());
    return kExitUsage;  // ADP-ARGS-01
  }
  return -1;
}

bool Cli::Given(const std::string& name) const {
  return app_->get_option(name)->count() > 0;
}

}  // namespace cuframes::adapter
