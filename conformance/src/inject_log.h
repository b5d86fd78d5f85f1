// inject_log.h: reads the per-process logs of the CUPTI injection library (conformance/inject/)
// and judges the process-internal CUDA rules from them: RES-CUDA-01..04, ACK-CUDA-01/02 and the
// ready-event flags of SHM-SLOT-01.
//
// The log: $CUFRAMES_INJECT_LOG_DIR/cuda-<pid>.jsonl, one JSON object per line, in the order the
// calls happened in that process. Every line has "t" (CLOCK_MONOTONIC ns), "pid", "tid" and "ev";
// most have "api" (the CUDA function) and "rc" (its result, 0 = success). Events and their
// members (pointers, streams and events are the values of the handles, as unsigned numbers):
//   init            ppid, cupti (CUptiResult of the subscription), param_info (1: kernel
//                   parameters can be scanned)
//   ipc_open        handle (128 hex digits), ptr (the mapping), flags       after the call
//   ipc_close       ptr                                                     after the call
//   ipc_get_mem     ptr, handle                                             after the call
//   alloc           ptr, bytes                                              after the call
//   free            ptr[, stream]                                           BEFORE the call
//   event_create    event, flags                                            after the call
//   event_destroy   event                                                   BEFORE the call
//   ipc_get_event   event, handle;   ipc_open_event  handle, event
//   event_record    event, stream;   stream_wait     stream, event
//   stream_sync     stream;  stream_query stream;  event_sync event;  event_query event;  ctx_sync
//   copy            dst, src, bytes, stream (async copies and memsets)
//   launch          stream, scan (1: ptrs lists every 8-byte word of the kernel's parameters;
//                   0: unknown, the launch may touch any mapping)
//   fork            in the parent, before fork();  fork_child  in the child (its own pid), ppid
//   accept, conn_close   fd: Unix-socket connections accepted and closed (only when the library
//                   is also LD_PRELOADed)
// A last line without its newline (a process killed inside write) is dropped and counted.
//
// What "after its last stream use has completed" (RES-CUDA-02) is taken to mean here, an
// approximation stated in the findings: a use of a mapping is an async copy or memset whose
// source or destination lies in it, or a kernel launch with a parameter word pointing into it (a
// launch whose parameters cannot be scanned counts as a use of every open mapping). A use is known
// complete after a successful stream synchronize/query of its stream, an event synchronize/query
// of an event recorded on that stream after it, a device synchronize, or any of these on a stream
// that waited on such an event. Implicit synchronisation (the legacy default stream, blocking
// copies, cudaFree) is not credited.
#ifndef CUFRAMES_CONFORMANCE_SRC_INJECT_LOG_H_
#define CUFRAMES_CONFORMANCE_SRC_INJECT_LOG_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace cuframes::conform::inject {

struct Record {
  size_t line = 0;  // 1-based line number in the file
  uint64_t pid = 0;
  std::string ev;
  nlohmann::json j;
  // Returns member `k` as an unsigned number (0 when absent or not a number).
  uint64_t U(const char* k) const;
  // Returns member `k` as a string ("" when absent).
  std::string S(const char* k) const;
  bool ok() const { return U("rc") == 0; }
  // "line 12: cudaIpcCloseMemHandle ptr 0x7f.. rc 0" for evidence.
  std::string Describe() const;
};

struct ProcessLog {
  std::string path;
  uint64_t pid = 0;  // from the file name, 0 if it has none
  std::vector<Record> records;
  size_t bad_lines = 0;   // lines that are not JSON objects with "ev"
  bool cut_tail = false;  // the last line had no newline
  // Returns the "init" record's cupti result, or -1 when the file has no init line.
  int64_t Cupti() const;
};

// Parses a log's text. `path` names it in evidence; `pid` is the process the file belongs to
// (records of a fork child carry their own pid).
ProcessLog ParseLog(std::string_view text, const std::string& path, uint64_t pid);
// Reads every cuda-<pid>.jsonl in `dir`, sorted by name. Returns an empty list if there is none.
std::vector<ProcessLog> ReadLogs(const std::string& dir);

struct Finding {
  std::string req;   // the requirement the log shows violated
  std::string what;  // what happened, with the log lines as evidence
};

// RES-CUDA-01 and RES-CUDA-02 for an importing (subscriber) process: each handle opened once
// while its mapping is open; each mapping closed exactly once, after every use of it is known
// complete; and, when `complete` (the process exited on its own), none left open. A mapping spans
// `mapping_bytes` from the pointer ipc_open returned (the slot's size: the log does not carry the
// allocation's). Records of other pids (a fork child) are ignored.
std::vector<Finding> JudgeImports(const ProcessLog& log, uint64_t mapping_bytes, bool complete);

// RES-CUDA-04: a fork (or fork child) line, i.e. fork() after the driver initialised.
std::vector<Finding> JudgeForks(const ProcessLog& log);

// The events this process exported (cudaIpcGetEventHandle): created with cudaEventInterprocess |
// cudaEventDisableTiming, and each recorded on one stream only. `req` names the rule (ACK-CUDA-01
// for a subscriber's ack event, SHM-SLOT-01 for a publisher's ready events); `one_stream` adds
// the single-stream check (ACK-CUDA-01). *exported (may be null) receives how many there were.
std::vector<Finding> JudgeExportedEvents(const ProcessLog& log, const std::string& req,
                                         bool one_stream, size_t* exported);

// RES-CUDA-03 for a publisher: no exported allocation freed and no exported (ready) event
// destroyed while a subscriber connection it accepted is still open. *accepts (may be null)
// receives the number of accepted connections seen: 0 means the socket calls were not visible
// (the library was not preloaded, or the implementation does not call accept through libc) and
// nothing can be judged.
std::vector<Finding> JudgeFreesAfterCloses(const ProcessLog& log, size_t* accepts);

// What a publisher did with one subscriber's ack event handle (ACK-CUDA-02).
struct AckEventUse {
  size_t opens = 0;          // successful cudaIpcOpenEventHandle of the handle
  size_t destroys = 0;       // cudaEventDestroy of an event opened from it
  size_t first_destroy = 0;  // line of the first destroy (0: none)
  std::string evidence;      // the lines involved
};
AckEventUse TraceAckEvent(const ProcessLog& log, const std::string& handle_hex);

// Returns `bytes` as lowercase hex (the log's handle format).
std::string HexOf(const uint8_t* bytes, size_t n);

}  // namespace cuframes::conform::inject

#endif  // CUFRAMES_CONFORMANCE_SRC_INJECT_LOG_H_
