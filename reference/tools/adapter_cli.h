// adapter_cli.h: the adapters' command line (spec/ADAPTER.md section 2), on CLI11.
//
// Both adapters declare their options here, so `--help`, unknown options, missing values,
// repeated options and values out of range behave the same in both (ADP-ARGS-01: a usage error
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

  // --name N: a decimal number in [lo, hi]; `*v` holds the default until parsed.
  void Number(const std::string& name, uint64_t* v, uint64_t lo, uint64_t hi,
              const std::string& help);
  // --name S, one of `allowed` (any string when empty). `required` makes its absence an error.
  void Text(const std::string& name, std::string* v, const std::vector<std::string>& allowed,
            const std::string& help, bool required = false);
  // --name, no value.
  void Flag(const std::string& name, bool* v, const std::string& help);

  // Returns -1 when the adapter should go on, else the exit status: 0 after --help (printed to
  // stdout), kExitUsage after a usage error (printed to stderr).
  int Parse(int argc, char** argv);
  // True when --name appeared on the command line.
  bool Given(const std::string& name) const;

 private:
  std::unique_ptr<CLI::App> app_;
};

}  // namespace cuframes::adapter

#endif  // CUFRAMES_REFERENCE_TOOLS_ADAPTER_CLI_H_
