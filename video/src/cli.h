// cli.h: plumbing shared by cuframes-video's subcommands: JSON-lines events on stdout,
// SIGTERM/SIGINT as a clean stop, and the exit codes (those of the reference adapters: 0 ok,
// 1 usage, 2 protocol/peer error, 3 timeout, 77 unsupported). The command line and the mapping
// of a status to an exit code are the adapters' (reference/tools/adapter_cli.h, CLI11), so
// --help, unknown options, bad values and exit codes behave as they do in cuframes-pub and
// cuframes-sub. In particular a recorder pointed at a publisher that offers no HOST ring gets
// UNSUPPORTED_KIND and exits 2 (a peer refusal), not 77, which scripts and test runners read as
// "cannot run here" and would skip.
#ifndef CUFRAMES_VIDEO_CLI_H_
#define CUFRAMES_VIDEO_CLI_H_

#include <string>

#include "adapter_cli.h"
#include "adapter_common.h"

namespace cuframes::video {

using adapter::ExitCodeFor;
using adapter::kExitOk;
using adapter::kExitPeer;
using adapter::kExitTimeout;
using adapter::kExitUnsupported;
using adapter::kExitUsage;

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
