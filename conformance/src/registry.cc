#include "registry.h"

#include <unistd.h>

#include <atomic>
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

Registrar::Registrar(CaseDef def) {
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

CaseContext::CaseContext(const RunEnv& env, const CaseDef& def) : env_(env), def_(def) {
  key_ = UniqueKey();
  keys_.push_back(key_);
}

CaseContext::~CaseContext() {
  Cleanup();
}

std::string CaseContext::NewKey() {
  keys_.push_back(UniqueKey());
  return keys_.back();
}

std::string CaseContext::SocketPath() const {
  return env_.socket_dir + "/cuframes-" + key_ + ".sock";
}
std::string CaseContext::SegmentPath() const {
  return "/dev/shm/cuframes-" + key_;
}
std::string CaseContext::RingPath() const {
  return "/dev/shm/cuframes-" + key_ + "-packets";
}

Process& CaseContext::Start(const std::vector<std::string>& tmpl, const char* what,
                            const std::vector<std::string>& args) {
  if (tmpl.empty()) Unsupported(std::string("the manifest offers no ") + what + " adapter");
  const std::string dir = env_.log_dir + "/" + Sanitize(def_.id);
  std::filesystem::create_directories(dir);
  const std::string err_path = dir + "/" + what + "-" + std::to_string(procs_.size()) + ".stderr";
  std::map<std::string, std::string> env = manifest().env;
  env["CUFRAMES_SOCKET_DIR"] = env_.socket_dir;
  std::string error;
  auto p = Process::Spawn(manifest().Expand(tmpl, args), env, err_path, &error);
  if (!p) Fail("HARNESS", std::string("the ") + what + " adapter starts", error);
  Note(std::string("started ") + what + " pid " + std::to_string(p->pid()) + ": " +
       p->command_line());
  procs_.push_back(std::move(p));
  return *procs_.back();
}

Process& CaseContext::StartPublisher(const std::vector<std::string>& args) {
  return Start(manifest().publisher, "publisher", args);
}

Process& CaseContext::StartSubscriber(const std::vector<std::string>& args) {
  return Start(manifest().subscriber, "subscriber", args);
}

void CaseContext::CheckUnsupported(Process& p) {
  p.Pump(0);
  if (!p.running() && p.exit_code() == 77) {
    Unsupported("adapter exited 77 (unsupported): " + p.command_line());
  }
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
  for (auto& p : procs_) {
    if (p->running()) p->Terminate(2000);
  }
  // Remove whatever the IUT (or a hostile script of ours) left, so one case never leaks into the
  // next; cases that verify RES-CLOSE-03 check for leftovers before this runs.
  for (const std::string& k : keys_) {
    unlink((env_.socket_dir + "/cuframes-" + k + ".sock").c_str());
    unlink(("/dev/shm/cuframes-" + k).c_str());
    unlink(("/dev/shm/cuframes-" + k + "-packets").c_str());
  }
}

}  // namespace cuframes::conform
