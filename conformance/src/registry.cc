#include "registry.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>

#include "bytes.h"

namespace cuframes::conform {

const char* RoleName(Role r) {
  return r == Role::kPublisher ? "publisher" : "subscriber";
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPass:
      return "PASS";
    case Outcome::kFail:
      return "FAIL";
    case Outcome::kUnsupported:
      return "UNSUPPORTED";
    case Outcome::kXfail:
      return "XFAIL";
    case Outcome::kXpass:
      return "XPASS";
  }
  return "?";
}

std::vector<CaseDef>& Registry() {
  static std::vector<CaseDef> cases;
  return cases;
}

namespace {

void RunObserved(CaseContext& ctx) {
  ctx.def().body(ctx);
  ctx.FinishObserved();
}

}  // namespace

Registrar::Registrar(CaseDef def) {
  if (def.body == nullptr) {
    def.body = def.fn;
    def.fn = &RunObserved;
  }
  Registry().push_back(std::move(def));
}

std::vector<CaseGenerator>& Generators() {
  static std::vector<CaseGenerator> gens;
  return gens;
}

GeneratorRegistrar::GeneratorRegistrar(CaseGenerator g) {
  Generators().push_back(g);
}

std::vector<CaseDef> AllCases(const Spec& spec) {
  std::vector<CaseDef> out = Registry();
  for (CaseGenerator g : Generators())
    g(spec, &out);
  return out;
}

namespace {

std::string UniqueKey() {
  static std::atomic<int> counter{0};
  return "cfc" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

std::string Sanitize(const std::string& id) {
  std::string s = id;
  for (char& c : s) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  }
  return s;
}

}  // namespace

CaseContext::CaseContext(const RunEnv& env, const CaseDef& def)
    : env_(env), def_(def), socket_dir_(env.socket_dir), socket_dir_env_(env.socket_dir) {
  key_ = UniqueKey();
  keys_.push_back(key_);
  t0_ns_ = MonoNs();
}

CaseContext::~CaseContext() {
  Cleanup();
}

Observer& CaseContext::observer() {
  if (!observer_) observer_ = std::make_unique<Observer>(*env_.spec, socket_dir_);
  return *observer_;
}

void CaseContext::FailObserved(const ObsViolation& v, const std::string& then) {
  Failure f;
  f.req = v.req;
  f.expected = v.expected;
  char at[96];
  std::snprintf(at, sizeof at, " [shared-memory observer, sample at %.3f ms into the case]",
                static_cast<double>(v.t_ns - t0_ns_) / 1e6);
  f.actual = v.actual + at + then;
  if (!v.bytes.empty()) f.hex = HexDump(v.bytes, v.base);
  throw CaseFailed{f};
}

void CaseContext::FinishObserved() {
  if (!observer_) return;
  for (auto& p : procs_) {
    if (p->running()) p->Terminate(2000);
  }
  observer_->Stop();
  Note("observer: " + std::to_string(observer_->samples()) + " samples");
  if (auto v = observer_->First()) FailObserved(*v, "");
}

std::string CaseContext::NewKey() {
  keys_.push_back(UniqueKey());
  return keys_.back();
}

std::string CaseContext::SocketPath() const {
  return socket_dir_ + "/cuframes-" + key_ + ".sock";
}
std::string CaseContext::SegmentPath() const {
  return "/dev/shm/cuframes-" + key_;
}
std::string CaseContext::RingPath() const {
  return "/dev/shm/cuframes-" + key_ + "-packets";
}

Process& CaseContext::Start(const std::vector<std::string>& tmpl, const char* what,
                            const std::vector<std::string>& args,
                            const std::vector<std::string>& prefix) {
  if (tmpl.empty()) Unsupported(std::string("the manifest offers no ") + what + " adapter");
  const std::string dir = CaseDir();
  std::filesystem::create_directories(dir);
  const std::string err_path = dir + "/" + what + "-" + std::to_string(procs_.size()) + ".stderr";
  std::map<std::string, std::optional<std::string>> env(manifest().env.begin(),
                                                        manifest().env.end());
  env["CUFRAMES_SOCKET_DIR"] = socket_dir_env_;
  for (const auto& [k, v] : adapter_env_)
    env[k] = v;
  std::string error;
  std::vector<std::string> argv = prefix;
  for (std::string& a : manifest().Expand(tmpl, args))
    argv.push_back(std::move(a));
  auto p = Process::Spawn(argv, env, err_path, &error);
  if (!p) Fail("HARNESS", std::string("the ") + what + " adapter starts", error);
  Note(std::string("started ") + what + " pid " + std::to_string(p->pid()) + ": " +
       p->command_line());
  if (std::string(what) == "publisher") {
    // Watch the key the IUT publisher was given (well-formed keys only: a case that feeds an
    // invalid key expects nothing to be created).
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] != "--key") continue;
      const std::string& k = args[i + 1];
      const bool ok =
          !k.empty() && k.size() <= 64 && k[0] != '.' &&
          std::all_of(k.begin(), k.end(), [](char c) {
            return isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
          });
      if (ok) observer().Watch(k, IutRole::kPublisher);
    }
  }
  procs_.push_back(std::move(p));
  return *procs_.back();
}

void CaseContext::SetAdapterEnv(const std::string& name, const std::string& value) {
  if (value.empty()) {
    adapter_env_.erase(name);
  } else {
    adapter_env_[name] = value;
  }
}

void CaseContext::UseDefaultSocketDir(bool set_empty) {
  if (!procs_.empty() || observer_) {
    Fail("HARNESS", "UseDefaultSocketDir before anything starts", "called too late");
  }
  socket_dir_ = "/tmp";
  socket_dir_env_ = set_empty ? std::optional<std::string>("") : std::nullopt;
}

std::string CaseContext::CaseDir() const {
  return env_.log_dir + "/" + Sanitize(def_.id);
}

Process& CaseContext::StartPublisher(const std::vector<std::string>& args) {
  return Start(manifest().publisher, "publisher", args);
}

Process& CaseContext::StartSubscriber(const std::vector<std::string>& args) {
  return Start(manifest().subscriber, "subscriber", args);
}

namespace {
std::vector<std::string> SetprivPrefix(uint32_t uid, uint32_t gid) {
  return {"/usr/bin/setpriv", "--reuid=" + std::to_string(uid), "--regid=" + std::to_string(gid),
          "--clear-groups", "--"};
}
}  // namespace

Process& CaseContext::StartSubscriberAs(uint32_t uid, uint32_t gid,
                                        const std::vector<std::string>& args) {
  return Start(manifest().subscriber, "subscriber", args, SetprivPrefix(uid, gid));
}

Process& CaseContext::StartPublisherAs(uint32_t uid, uint32_t gid,
                                       const std::vector<std::string>& args) {
  return Start(manifest().publisher, "publisher", args, SetprivPrefix(uid, gid));
}

Process& CaseContext::StartPublisherUnderUmask(unsigned mask,
                                               const std::vector<std::string>& args) {
  char octal[8];
  std::snprintf(octal, sizeof octal, "%03o", mask & 0777);
  return Start(manifest().publisher, "publisher", args,
               {"/bin/sh", "-c", std::string("umask ") + octal + " && exec \"$@\"", "sh"});
}

void CaseContext::CheckUnsupported(Process& p) {
  p.Pump(0);
  if (p.running() || p.exit_code() != 77) return;
  // A CUDA kind the manifest claims may still lack a usable device on this machine (ADP-KIND-01):
  // unsupported here. A case that needs only what every IUT has (HOST) or what the manifest
  // claims otherwise must not end in "unsupported": an adapter that exits 77 there refuses its
  // own claim, and reading that as UNSUPPORTED would let any bug hide behind exit 77.
  if (def_.needs.kind != "host") {
    Unsupported("adapter exited 77 (unsupported): " + p.command_line());
  }
  Fail("CONF-CLAIM-01",
       "the adapter runs a case that needs only what the manifest claims (proto_version " +
           std::to_string(def_.needs.proto) + ", kind " + def_.needs.kind +
           (def_.needs.feature.empty() ? "" : ", feature " + def_.needs.feature) +
           "), not exit 77 (unsupported)",
       p.StatusText() + "; " + p.command_line());
}

void CaseContext::WaitReady(Process& p, const std::string& req, int timeout_ms) {
  size_t from = 0;
  if (p.WaitEvent("ready", In(timeout_ms), &from)) return;
  CheckUnsupported(p);
  Fail(req,
       "the publisher adapter prints {\"event\":\"ready\"} within " + std::to_string(timeout_ms) +
           " ms",
       "no ready event; adapter " + p.StatusText());
}

void CaseContext::Note(const std::string& line) {
  log_.push_back(line);
}

void CaseContext::Fail(const std::string& req, const std::string& expected,
                       const std::string& actual, std::span<const uint8_t> bytes, size_t base) {
  // A violation the observer saw earlier is the first thing that went wrong: report it, with
  // what the case saw afterwards.
  if (observer_) {
    if (auto v = observer_->First()) {
      FailObserved(*v, "\n(afterwards the case saw " + req + ": expected " + expected + "; got " +
                           actual + ")");
    }
  }
  Failure f;
  f.req = req;
  f.expected = expected;
  f.actual = actual;
  if (!bytes.empty()) f.hex = HexDump(bytes, base);
  throw CaseFailed{f};
}

void CaseContext::Unsupported(const std::string& reason) {
  throw CaseUnsupported{reason};
}

std::string CaseContext::ProcessDetail() const {
  std::string out;
  for (const auto& p : procs_) {
    out += "$ " + p->command_line() + "\n  status: " + p->StatusText() + "\n";
    const std::string so = p->StdoutTail();
    if (!so.empty()) out += "  stdout (tail):\n" + so;
    const std::string se = p->StderrTail(1200);
    if (!se.empty()) out += "  stderr (tail):\n" + se + (se.back() == '\n' ? "" : "\n");
  }
  return out;
}

void CaseContext::Cleanup() {
  if (observer_) observer_->Stop();
  for (auto& p : procs_) {
    if (p->running()) p->Terminate(2000);
  }
  // Remove whatever the IUT (or a hostile script of ours) left, so one case never leaks into the
  // next; cases that verify RES-CLOSE-03 check for leftovers before this runs.
  for (const std::string& k : keys_) {
    unlink((socket_dir_ + "/cuframes-" + k + ".sock").c_str());
    unlink(("/dev/shm/cuframes-" + k).c_str());
    unlink(("/dev/shm/cuframes-" + k + "-packets").c_str());
  }
}

}  // namespace cuframes::conform
