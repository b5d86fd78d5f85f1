// adapter_cli.h: the command line of the reference's tools (the adapters, spec/ADAPTER.md section
// 2, and the cuframes-video companion tool), on CLI11, and the exit status they end with
// (ExitCodeFor, ADAPTER.md section 5).
//
// The tools declare their options here, so `--help`, unknown options, missing values, repeated
// options and values out of range behave the same in all of them (ADP-ARGS-01: a usage error
// prints what was wrong and exits 1). Numbers are decimal and unsigned: CLI11 by itself would
// wrap "-5" into a huge unsigned value and saturate an overflow, so every number goes through a
// strict check of its digits and range first.
#ifndef CUFRAMES_REFERENCE_TOOLS_ADAPTER_CLI_H_
#define CUFRAMES_REFERENCE_TOOLS_ADAPTER_CLI_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace cuframes::adapter {

class Cli {
 public:
  // `program` and `about` head the --help text.
  Cli(const std::string& program, const std::string& about);
  ~Cli();
  Cli(const Cli&) = delete;
  Cli& operator=(const Cli&) = delete;

  // Declares the subcommand `name` (`program name [options]`) and returns it, to declare its own
  // options on; it lives as long as this Cli. Once a Cli has subcommands, exactly one of them
  // must be given.
  Cli& Subcommand(const std::string& name, const std::string& about);
  // True when this subcommand was given (after Parse of the top-level Cli).
  bool Chosen() const;

  // --name N: a decimal number in [lo, hi]; `*v` holds the default until parsed.
  void Number(const std::string& name, uint64_t* v, uint64_t lo, uint64_t hi,
              const std::string& help);
  // --name S, one of `allowed` (any string when empty). `required` makes its absence an error.
  void Text(const std::string& name, std::string* v, const std::vector<std::string>& allowed,
            const std::string& help, bool required = false);
  // --name, no value.
  void Flag(const std::string& name, bool* v, const std::string& help);
  // --name X: a finite number > 0 (decimal, strtod syntax); `*v` holds the default until parsed.
  void Positive(const std::string& name, double* v, const std::string& help);
  // A positional argument (`name` without dashes), always required.
  void Positional(const std::string& name, std::string* v, const std::string& help);
  // Options `a` and `b` (declared before) cannot be given together.
  void Excludes(const std::string& a, const std::string& b);

  // Returns -1 when the adapter should go on, else the exit status: 0 after --help (printed to
  // stdout), kExitUsage after a usage error (printed to stderr).
  int Parse(int argc, char** argv);
  // True when --name appeared on the command line.
  bool Given(const std::string& name) const;
  // A usage error found after Parse (a rule between options): prints `what` to stderr the way
  // Parse prints its own errors and returns kExitUsage.
  int Fail(const std::string& what) const;

 private:
  Cli(CLI::App* app, std::string program);

  std::unique_ptr<CLI::App> owned_;  // the top-level Cli's; null in a subcommand
  CLI::App* app_;
  std::string program_;  // "tool" or "tool subcommand", in error messages
  std::vector<std::unique_ptr<Cli>> subs_;
};

// Maps a cuframes_status that ended a tool's run to its exit code (ADAPTER.md section 5,
// ADP-EXIT-01; the kExit* codes of adapter_common.h): OK 0, TIMEOUT and AGAIN 3,
// INVALID_ARGUMENT 1, UNSUPPORTED 77, anything else 2. UNSUPPORTED_KIND is 2, not 77: it is the
// peer's answer (a publisher offering no memory kind this subscriber takes), a refusal like
// VERSION_MISMATCH or FULL that the error event names, while 77 says that this build or machine
// cannot do what was asked, which a test runner reports as skipped rather than failed.
int ExitCodeFor(int status);

}  // namespace cuframes::adapter

#endif  // CUFRAMES_REFERENCE_TOOLS_ADAPTER_CLI_H_
