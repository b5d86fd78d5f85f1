// adapter_cli.cpp: see adapter_cli.h.
#include "adapter_cli.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "adapter_common.h"
#include "cuframes/cuframes.h"

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

// Checks that `s` is a finite number > 0 in strtod's syntax; returns "" or what is wrong.
std::string CheckPositive(const std::string& s) {
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(x) || x <= 0) {
    return "'" + s + "' is not a finite number > 0";
  }
  return "";
}

}  // namespace

Cli::Cli(const std::string& program, const std::string& about)
    : owned_(std::make_unique<CLI::App>(about, program)), app_(owned_.get()), program_(program) {}

Cli::Cli(CLI::App* app, std::string program) : app_(app), program_(std::move(program)) {}

Cli::~Cli() = default;

Cli& Cli::Subcommand(const std::string& name, const std::string& about) {
  app_->require_subcommand(1);
  subs_.push_back(
      std::unique_ptr<Cli>(new Cli(app_->add_subcommand(name, about), program_ + " " + name)));
  return *subs_.back();
}

bool Cli::Chosen() const {
  return app_->parsed();
}

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

void Cli::Positive(const std::string& name, double* v, const std::string& help) {
  app_->add_option(name, *v, help)
      ->capture_default_str()
      ->check(CLI::Validator([](std::string& s) { return CheckPositive(s); }, "", ""));
}

void Cli::Positional(const std::string& name, std::string* v, const std::string& help) {
  app_->add_option(name, *v, help)->required();
}

void Cli::Excludes(const std::string& a, const std::string& b) {
  app_->get_option(a)->excludes(app_->get_option(b));
}

int Cli::Parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app_->exit(e);  // prints the help text to stdout
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // Named after the subcommand the error is in, when it is in one.
    for (const auto& sub : subs_) {
      if (sub->Chosen()) return sub->Fail(e.what());
    }
    return Fail(e.what());  // ADP-ARGS-01
  }
  return -1;
}

int Cli::Fail(const std::string& what) const {
  std::fprintf(stderr, "%s: %s\nRun with --help for the options.\n", program_.c_str(),
               what.c_str());
  return kExitUsage;
}

int ExitCodeFor(int status) {
  switch (status) {
    case CUFRAMES_OK:
      return kExitOk;
    case CUFRAMES_TIMEOUT:
    case CUFRAMES_AGAIN:
      return kExitTimeout;
    case CUFRAMES_INVALID_ARGUMENT:
      return kExitUsage;
    case CUFRAMES_UNSUPPORTED:
      return kExitUnsupported;
    default:
      return kExitPeer;
  }
}

bool Cli::Given(const std::string& name) const {
  return app_->get_option(name)->count() > 0;
}

}  // namespace cuframes::adapter
