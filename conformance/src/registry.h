// registry.h: conformance cases, their registration, results, and the per-case context.
//
// A case is a function registered with an ID named after the spec section ("3.2/oversized-
// length"), the requirement IDs it verifies, the IUT role it tests and the capability it needs.
// The case drives the IUT through CaseContext; a violated requirement ends the case with a
// Failure naming the requirement, expected vs actual and the bytes involved.
#ifndef CUFRAMES_CONFORMANCE_SRC_REGISTRY_H_
#define CUFRAMES_CONFORMANCE_SRC_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "manifest.h"
#include "observer.h"
#include "process.h"
#include "spec_model.h"

namespace cuframes::conform {

enum class Role { kPublisher, kSubscriber };
const char* RoleName(Role r);

// What a case needs the IUT to claim. Empty strings need nothing.
struct Needs {
  int proto = 1;              // a proto_version the manifest must claim
  std::string kind = "host";  // a memory kind the manifest must claim
  std::string feature;        // an optional feature the manifest must claim
};

class CaseContext;
// A std::function so that cases derived from the twin can carry their row or field.
using CaseFn = std::function<void(CaseContext&)>;

struct CaseDef {
  std::string id;
  std::string title;
  std::vector<std::string> reqs;
  Role role;
  Needs needs;
  CaseFn fn;
  // The case's own body. Registrar moves fn here and sets fn to a wrapper that runs the body
  // and then judges what the shared-memory observer saw, so every case is observed without
  // edits to it.
  CaseFn body = nullptr;
  // Runs alone, after every other case, never beside one: for a case that holds the GPU with a
  // long kernel, which delays whatever another case's CUDA calls in this process would wait on,
  // or one that changes something the run shares (the socket directory's mode).
  bool exclusive = false;
};

// All registered cases, in registration order.
std::vector<CaseDef>& Registry();

struct Registrar {
  explicit Registrar(CaseDef def);
};

// Derived cases (transition rows, field boundaries) are generated once the twin is loaded, so a
// spec change that adds a row or a constrained field yields a case without a hand edit.
using CaseGenerator = void (*)(const Spec& spec, std::vector<CaseDef>* out);
std::vector<CaseGenerator>& Generators();
struct GeneratorRegistrar {
  explicit GeneratorRegistrar(CaseGenerator g);
};
// Returns the hand-written cases followed by every generator's cases for `spec`.
std::vector<CaseDef> AllCases(const Spec& spec);

// Defines and registers a case:
//   CF_CASE(Fn, "3.2/oversized-length", "title", {"TLV-ERR-01"}, Role::kPublisher, {}) { ... }
#define CF_CASE(fn, id, title, reqs, role, needs)                       \
  static void fn(::cuframes::conform::CaseContext& ctx);                \
  static const ::cuframes::conform::Registrar fn##_registrar(           \
      ::cuframes::conform::CaseDef{id, title, reqs, role, needs, &fn}); \
  static void fn([[maybe_unused]] ::cuframes::conform::CaseContext& ctx)

// The same for a case that must run alone (CaseDef::exclusive).
#define CF_CASE_EXCLUSIVE(fn, id, title, reqs, role, needs)                            \
  static void fn(::cuframes::conform::CaseContext& ctx);                               \
  static const ::cuframes::conform::Registrar fn##_registrar(                          \
      ::cuframes::conform::CaseDef{id, title, reqs, role, needs, &fn, nullptr, true}); \
  static void fn([[maybe_unused]] ::cuframes::conform::CaseContext& ctx)

enum class Outcome { kPass, kFail, kUnsupported, kXfail, kXpass };
const char* OutcomeName(Outcome o);

struct Failure {
  std::string req;  // the requirement violated (or "HARNESS" for a harness error)
  std::string expected;
  std::string actual;
  std::string hex;     // hex dump of the bytes involved
  std::string detail;  // adapter command lines, exit status, output tails
};

struct CaseResult {
  std::string id;
  std::string title;
  std::string section;
  std::vector<std::string> reqs;
  Role role = Role::kPublisher;
  Outcome outcome = Outcome::kPass;
  std::string reason;  // why UNSUPPORTED, or the xfail note
  Failure failure;     // meaningful for kFail / kXfail
  std::vector<std::string> log;
  double seconds = 0;
  std::string rerun;
};

// Thrown by a case to end it; the runner turns them into results.
struct CaseFailed {
  Failure failure;
};
struct CaseUnsupported {
  std::string reason;
};

struct RunEnv {
  const Spec* spec = nullptr;
  const Manifest* manifest = nullptr;
  std::string socket_dir;  // private CUFRAMES_SOCKET_DIR of this run
  std::string log_dir;     // adapters' stderr files go below it
};

class CaseContext {
 public:
  CaseContext(const RunEnv& env, const CaseDef& def);
  ~CaseContext();  // Cleanup()
  CaseContext(const CaseContext&) = delete;
  CaseContext& operator=(const CaseContext&) = delete;

  const Spec& spec() const { return *env_.spec; }
  const Manifest& manifest() const { return *env_.manifest; }
  const std::string& key() const { return key_; }
  std::string SocketPath() const;
  std::string SegmentPath() const;
  std::string RingPath() const;
  // Returns a fresh key for a second publisher in the same case.
  std::string NewKey();

  // Starts the IUT's publisher (or subscriber) adapter with `args` for this case's key (the
  // caller includes --key). Throws CaseUnsupported when the manifest offers no such adapter.
  Process& StartPublisher(const std::vector<std::string>& args);
  Process& StartSubscriber(const std::vector<std::string>& args);
  // Starts the subscriber adapter as another uid/gid through setpriv (a setresuid child; the
  // harness itself never forks). Needs root.
  Process& StartSubscriberAs(uint32_t uid, uint32_t gid, const std::vector<std::string>& args);
  // The same for the publisher adapter.
  Process& StartPublisherAs(uint32_t uid, uint32_t gid, const std::vector<std::string>& args);
  // Starts the publisher adapter under umask `mask` (through /bin/sh's umask builtin), so a case
  // can tell a mode set explicitly (RES-PERM-01) from one the umask happened to leave.
  Process& StartPublisherUnderUmask(unsigned mask, const std::vector<std::string>& args);
  // Adds NAME=VALUE to the environment of the adapters this case starts from now on (after the
  // manifest's env; suites/cuda_inject.cc injects its CUPTI library this way). An empty value
  // removes an earlier setting.
  void SetAdapterEnv(const std::string& name, const std::string& value);
  // Runs this case's adapters without a private socket directory: CUFRAMES_SOCKET_DIR removed
  // from their environment (or, with `set_empty`, set to the empty string), so they must use
  // PROTOCOL.md's default /tmp; SocketPath() and the observer follow. Call it before the first
  // adapter or scripted peer starts.
  void UseDefaultSocketDir(bool set_empty);
  // This case's own directory under the run's log directory (the adapters' stderr files, logs).
  std::string CaseDir() const;
  // Waits for the publisher's "ready" event. Ends the case (CheckUnsupported for exit 77, else a
  // failure of `req`) when the adapter exits or stays silent for `timeout_ms`.
  void WaitReady(Process& p, const std::string& req, int timeout_ms = 5000);
  // If `p` exited with 77: ends the case as UNSUPPORTED when it needs a CUDA kind (claimed, yet
  // maybe without a usable device here), else as a failure of CONF-CLAIM-01 (the adapter refused
  // what its manifest claims).
  void CheckUnsupported(Process& p);

  void Note(const std::string& line);
  [[noreturn]] void Fail(const std::string& req, const std::string& expected,
                         const std::string& actual, std::span<const uint8_t> bytes = {},
                         size_t base = 0);
  void Expect(bool ok, const std::string& req, const std::string& expected,
              const std::string& actual, std::span<const uint8_t> bytes = {}, size_t base = 0) {
    if (!ok) Fail(req, expected, actual, bytes, base);
  }
  [[noreturn]] void Unsupported(const std::string& reason);

  // The shared-memory observer of this case (BRIEF principle 10). Starting an IUT publisher
  // watches its key; a scripted publisher watches its own key for the IUT subscriber's writes.
  // A case about to write hostile bytes scopes the checks they would trip with
  // observer().Disable(kObs...) (or an ObserverPause).
  Observer& observer();
  // Runs after the case's body: lets the adapters go while the observer still watches (their
  // shut-down is judged too), stops it and fails the case with its first violation, if any.
  void FinishObserved();

  // Terminates every adapter still running and removes this case's files. Safe to call twice.
  void Cleanup();
  // Returns the adapters' command lines, statuses and output tails for evidence.
  std::string ProcessDetail() const;
  std::vector<std::string>& log() { return log_; }
  const CaseDef& def() const { return def_; }

 private:
  Process& Start(const std::vector<std::string>& tmpl, const char* what,
                 const std::vector<std::string>& args, const std::vector<std::string>& prefix = {});

  [[noreturn]] void FailObserved(const ObsViolation& v, const std::string& then);

  const RunEnv& env_;
  const CaseDef& def_;
  std::unique_ptr<Observer> observer_;
  int64_t t0_ns_ = 0;
  std::string key_;
  std::vector<std::string> keys_;
  std::vector<std::unique_ptr<Process>> procs_;
  std::map<std::string, std::string> adapter_env_;
  std::string socket_dir_;  // the run's private directory, or /tmp (UseDefaultSocketDir)
  std::optional<std::string> socket_dir_env_;  // CUFRAMES_SOCKET_DIR for adapters; none: unset
  std::vector<std::string> log_;
};

// Switches observer checks off for its scope (a hostile script writing what they would flag).
class ObserverPause {
 public:
  ObserverPause(CaseContext& ctx, uint32_t mask) : obs_(ctx.observer()), mask_(mask) {
    obs_.Disable(mask_);
  }
  ~ObserverPause() { obs_.Enable(mask_); }
  ObserverPause(const ObserverPause&) = delete;
  ObserverPause& operator=(const ObserverPause&) = delete;

 private:
  Observer& obs_;
  uint32_t mask_;
};

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_REGISTRY_H_
