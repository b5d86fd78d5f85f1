// cli.h: command-line plumbing shared by cuframes-video's subcommands: "--name value" parsing,
// JSON-lines events on stdout, SIGTERM/SIGINT as a clean stop, and the exit codes (those of the
// reference adapters: 0 ok, 1 usage, 2 protocol/peer error, 3 timeout, 77 unsupported).
#ifndef CUFRAMES_VIDEO_CLI_H_
#define CUFRAMES_VIDEO_CLI_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cuframes::video {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitPeer = 2;
inline constexpr int kExitTimeout = 3;
inline constexpr int kExitUnsupported = 77;

// Maps a cuframes_status to an exit code.
int ExitCodeFor(int status);

// Parsed arguments: options ("--name value"), flags ("--name") and positionals.
struct Args {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  bool Has(const std::string& name) const { return values.count(name) != 0; }
  std::string Str(const std::string& name, const std::string& def) const;
  // Returns false when the option is present but not a decimal number in [lo, hi].
  bool U64(const std::string& name, uint64_t def, uint64_t lo, uint64_t hi, uint64_t* out) const;
  // Returns false when the option is present but not a positive finite number.
  bool Double(const std::string& name, double def, double* out) const;
};

// Parses argv[first..argc). `options` take a value, `flags` do not. Returns false (after printing
// what was wrong to stderr) on an unknown option or a missing value.
bool ParseArgs(int argc, char** argv, int first, const std::vector<std::string>& options,
               const std::vector<std::string>& flags, Args* out);

// Prints one JSON object line ({ + body + }) to stdout and flushes it; thread-safe.
void EmitJson(const std::string& body);
// Prints {"event":"error","code":N,"name":"...","where":"..."[,extra]} to stdout and the same
// in words to stderr.
void EmitError(int status, const std::string& where, const std::string& extra = "");
// JSON string literal of `s`.
std::string Quote(const std::string& s);

// SIGTERM and SIGINT set a flag (the loops poll it) instead of killing the process, so that the
// publisher's files are removed on the way out.
void InstallStopHandler();
bool StopRequested();

// Waits for one line (or EOF) on stdin: the tests' gate, so that a test holds a process at a
// known point without sleeping.
void WaitStdinLine();

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_CLI_H_
