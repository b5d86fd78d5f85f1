#include "runner.h"

#include <fnmatch.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "coverage.h"
#include "report.h"
#include "xfail.h"

namespace cuframes::conform {

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

std::string ShellQuote(const std::string& s) {
  if (s.find_first_of(" '\"*?[]$\\") == std::string::npos) return s;
  std::string o = "'";
  for (char c : s)
    o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

}  // namespace

namespace {

// Removes what IUTs left under this run's keys once every case has ended: each case removes the
// names its keys map to (CaseContext::Cleanup), but an IUT with a bug in its names (a key cut or
// padded) leaves files no case knows, and repeated runs against broken builds (the kill check,
// mutation passes) filled /dev/shm with them. Keys are cfc<pid>-<n> (registry.cc UniqueKey), so
// everything of this run starts with cuframes-cfc<pid>-. Returns how many entries went.
size_t SweepRunFiles(const std::string& socket_dir) {
  const std::string prefix = "cuframes-cfc" + std::to_string(getpid()) + "-";
  size_t swept = 0;
  std::error_code ec;
  for (const char* dir : {"/dev/shm", "/tmp"}) {
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().filename().string().rfind(prefix, 0) == 0 &&
          std::filesystem::remove(e.path(), ec)) {
        ++swept;
      }
    }
  }
  for (const auto& e : std::filesystem::directory_iterator(socket_dir, ec)) {
    if (std::filesystem::remove(e.path(), ec)) ++swept;
  }
  return swept;
}

bool SelectedBy(const CaseDef& def, const std::string& pattern) {
  if (fnmatch(pattern.c_str(), def.id.c_str(), 0) == 0) return true;
  if (def.id.rfind(pattern, 0) == 0 && pattern.back() == '/') return true;
  for (const std::string& r : def.reqs) {
    if (fnmatch(pattern.c_str(), r.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace

// `only` is a comma-separated list (case ids never contain a comma); a case is selected when any
// element names it.
bool Selected(const CaseDef& def, const std::string& only) {
  if (only.empty()) return true;
  size_t start = 0;
  while (start <= only.size()) {
    const size_t end = std::min(only.find(',', start), only.size());
    const std::string pattern = only.substr(start, end - start);
    if (!pattern.empty() && SelectedBy(def, pattern)) return true;
    start = end + 1;
  }
  return false;
}

std::string MissingCapability(const CaseDef& def, const Manifest& m) {
  if (def.role == Role::kPublisher && m.publisher.empty()) return "no publisher adapter";
  if (def.role == Role::kSubscriber && m.subscriber.empty()) return "no subscriber adapter";
  if (def.needs.proto > 0 && !m.ClaimsProto(def.needs.proto)) {
    return "proto_version " + std::to_string(def.needs.proto) + " not claimed";
  }
  if (!def.needs.kind.empty() && !m.ClaimsKind(def.needs.kind)) {
    return "memory kind " + def.needs.kind + " not claimed";
  }
  if (!def.needs.feature.empty() && !m.HasFeature(def.needs.feature)) {
    return "feature " + def.needs.feature + " not claimed";
  }
  return "";
}

namespace {

// Runs one case into a result: capability check, the case body, cleanup, xfail.
CaseResult RunOne(const CaseDef& def, const RunEnv& env, const Manifest& manifest,
                  const std::vector<XfailEntry>& xfails, const std::string& rerun_base) {
  CaseResult r;
  r.id = def.id;
  r.title = def.title;
  r.reqs = def.reqs;
  r.role = def.role;
  r.rerun = rerun_base + " --only " + ShellQuote(def.id);
  const auto c0 = Clock::now();
  const std::string missing = MissingCapability(def, manifest);
  if (!missing.empty()) {
    r.outcome = Outcome::kUnsupported;
    r.reason = missing;
  } else {
    CaseContext ctx(env, def);
    try {
      def.fn(ctx);
      r.outcome = Outcome::kPass;
    } catch (const CaseFailed& f) {
      r.outcome = Outcome::kFail;
      r.failure = f.failure;
    } catch (const CaseUnsupported& u) {
      r.outcome = Outcome::kUnsupported;
      r.reason = u.reason;
    } catch (const std::exception& e) {
      r.outcome = Outcome::kFail;
      r.failure.req = "HARNESS";
      r.failure.expected = "the case runs to completion";
      r.failure.actual = std::string("harness exception: ") + e.what();
    }
    ctx.Cleanup();
    if (r.outcome == Outcome::kFail) r.failure.detail = ctx.ProcessDetail();
    r.log = ctx.log();
  }
  ApplyXfail(FindXfail(xfails, def.id), &r);
  r.seconds = std::chrono::duration<double>(Clock::now() - c0).count();
  return r;
}

std::string ProgressLine(size_t n, size_t total, const CaseResult& r) {
  char line[64];
  std::snprintf(line, sizeof line, "[%3zu/%zu] %-11s ", n, total, OutcomeName(r.outcome));
  std::string out = line + r.id;
  std::snprintf(line, sizeof line, " (%.2f s)", r.seconds);
  out += line;
  if (r.outcome == Outcome::kUnsupported) out += ": " + r.reason;
  if (r.outcome == Outcome::kFail) out += ": " + r.failure.req;
  return out;
}

bool LoadExemptions(const std::string& path, std::vector<Exemption>* out) {
  std::string text, error;
  if (!ReadFile(path, &text)) return true;  // no file: nothing exempt
  if (!ParseExemptions(text, out, &error)) {
    std::cerr << "cuframes-conform: " << path << ": " << error << "\n";
    return false;
  }
  return true;
}

}  // namespace

bool RunnableCases(const RunOptions& opts, std::vector<CaseDef>* out, std::string* error) {
  Spec spec;
  if (!spec.Load(opts.spec_path, error)) return false;
  std::vector<Exemption> rows, fields;
  if (!LoadExemptions(opts.row_exemptions_path, &rows) ||
      !LoadExemptions(opts.field_exemptions_path, &fields)) {
    *error = "unreadable exemption file";
    return false;
  }
  std::set<std::string> exempt;
  for (const Exemption& e : rows)
    exempt.insert(e.id);
  for (const Exemption& e : fields)
    exempt.insert(e.id);
  out->clear();
  for (CaseDef& c : AllCases(spec)) {
    if (!exempt.count(c.id)) out->push_back(std::move(c));
  }
  return true;
}

std::vector<CaseResult> RunScheduled(const std::vector<const CaseDef*>& cases, size_t jobs,
                                     const std::function<CaseResult(const CaseDef&)>& run,
                                     const std::function<void(size_t, const CaseResult&)>& done) {
  std::vector<size_t> shared;
  std::vector<size_t> alone;
  for (size_t i = 0; i < cases.size(); ++i)
    (cases[i]->exclusive ? alone : shared).push_back(i);
  // Workers take the next shared case; this thread reports each result as soon as every earlier
  // one is in, so the console keeps registration order.
  std::vector<std::optional<CaseResult>> results(cases.size());
  std::mutex mu;
  std::condition_variable done_cv;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (;;) {
      const size_t k = next.fetch_add(1);
      if (k >= shared.size()) return;
      CaseResult r = run(*cases[shared[k]]);
      std::lock_guard<std::mutex> lock(mu);
      results[shared[k]] = std::move(r);
      done_cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (size_t j = 0; j < std::min(std::max<size_t>(jobs, 1), shared.size()); ++j)
    pool.emplace_back(worker);
  for (const size_t i : shared) {
    std::unique_lock<std::mutex> lock(mu);
    done_cv.wait(lock, [&] { return results[i].has_value(); });
    done(i, *results[i]);
  }
  for (std::thread& t : pool)
    t.join();
  for (const size_t i : alone) {
    results[i] = run(*cases[i]);
    done(i, *results[i]);
  }
  std::vector<CaseResult> out;
  out.reserve(results.size());
  for (auto& r : results)
    out.push_back(std::move(*r));
  return out;
}

int RunConformance(const RunOptions& opts) {
  signal(SIGPIPE, SIG_IGN);
  Spec spec;
  std::string error;
  if (!spec.Load(opts.spec_path, &error)) {
    std::cerr << "cuframes-conform: " << error << "\n";
    return 2;
  }
  std::vector<Exemption> exemptions, row_exemptions, field_exemptions;
  if (!LoadExemptions(opts.exemptions_path, &exemptions) ||
      !LoadExemptions(opts.row_exemptions_path, &row_exemptions) ||
      !LoadExemptions(opts.field_exemptions_path, &field_exemptions)) {
    return 2;
  }
  // Hand-written cases plus the ones derived from the twin; a derived case for an exempt row is
  // listed with its reason, never run.
  const std::vector<CaseDef> all = AllCases(spec);
  std::map<std::string, std::string> exempt_reason;
  for (const Exemption& e : row_exemptions)
    exempt_reason[e.id] = e.reason;
  // A field exemption that names one boundary case ("<section>/<Struct.field>=<value>") exempts
  // that case only, e.g. where two rules of the spec contradict each other for that value.
  for (const Exemption& e : field_exemptions) {
    if (e.id.find('=') != std::string::npos) exempt_reason[e.id] = e.reason;
  }
  std::vector<CaseDef> cases;
  std::vector<std::string> all_ids;
  for (const CaseDef& c : all) {
    all_ids.push_back(c.id);
    if (!exempt_reason.count(c.id)) cases.push_back(c);
  }
  if (opts.list) {
    for (const CaseDef& c : all) {
      if (!Selected(c, opts.only)) continue;
      auto ex = exempt_reason.find(c.id);
      std::cout << c.id << "  [" << RoleName(c.role) << ", proto " << c.needs.proto
                << (c.needs.kind.empty() ? "" : ", " + c.needs.kind)
                << (c.needs.feature.empty() ? "" : ", " + c.needs.feature) << "]  ";
      for (size_t i = 0; i < c.reqs.size(); ++i)
        std::cout << (i ? "," : "") << c.reqs[i];
      std::cout << "\n    " << c.title << "\n";
      if (ex != exempt_reason.end()) std::cout << "    EXEMPT: " << ex->second << "\n";
    }
    for (const Exemption& e : field_exemptions) {
      if (e.id.find('=') != std::string::npos) continue;  // listed with its case above
      if (opts.only.empty() || fnmatch(opts.only.c_str(), e.id.c_str(), 0) == 0) {
        std::cout << e.id << "  [field]\n    EXEMPT: " << e.reason << "\n";
      }
    }
    if (opts.only.empty()) {
      const DerivedCoverage d =
          CheckDerivedCoverage(spec, all_ids, row_exemptions, field_exemptions);
      for (const std::string& h : d.holes)
        std::cout << "COVERAGE HOLE: " << h << "\n";
    }
    return 0;
  }
  Manifest manifest;
  if (!LoadManifest(opts.manifest_path, opts.build_dir, &manifest, &error)) {
    std::cerr << "cuframes-conform: " << error << "\n";
    return 2;
  }
  std::string text;
  std::vector<XfailEntry> xfails;
  if (!opts.xfail_path.empty()) {
    if (!ReadFile(opts.xfail_path, &text) || !ParseXfail(text, &xfails, &error)) {
      std::cerr << "cuframes-conform: cannot use xfail file " << opts.xfail_path << ": " << error
                << "\n";
      return 2;
    }
  }
  std::filesystem::create_directories(opts.reports_dir);
  // A private socket directory (short, so socket paths fit sun_path) keeps runs apart.
  char sock_tmpl[] = "/tmp/cfconf-XXXXXX";
  if (!mkdtemp(sock_tmpl)) {
    std::cerr << "cuframes-conform: mkdtemp failed\n";
    return 2;
  }
  RunEnv env;
  env.spec = &spec;
  env.manifest = &manifest;
  env.socket_dir = sock_tmpl;
  env.log_dir = opts.reports_dir + "/logs";
  std::filesystem::remove_all(env.log_dir);

  RunReport report;
  report.manifest_name = manifest.name;
  report.manifest_path = opts.manifest_path;
  report.spec_path = opts.spec_path;
  report.strict = opts.strict;
  const auto t0 = Clock::now();
  std::string rerun_base = opts.program + " --manifest " + ShellQuote(opts.manifest_path);
  if (!opts.build_dir.empty()) rerun_base += " --build-dir " + ShellQuote(opts.build_dir);

  std::vector<const CaseDef*> selected;
  for (const CaseDef& c : cases) {
    if (Selected(c, opts.only)) selected.push_back(&c);
  }
  // A selection that matches nothing (a typo) would report PASS having run nothing: refuse it.
  if (selected.empty()) {
    std::cerr << "cuframes-conform: --only '" << opts.only << "' matches no case (case globs, "
              << "requirement IDs or section prefixes, comma-separated; see --list)\n";
    rmdir(sock_tmpl);
    return 2;
  }
  const size_t jobs = static_cast<size_t>(std::max(1, opts.jobs));
  report.jobs = static_cast<int>(jobs);
  report.results = RunScheduled(
      selected, jobs,
      [&](const CaseDef& def) { return RunOne(def, env, manifest, xfails, rerun_base); },
      [&](size_t i, const CaseResult& r) {
        std::cout << ProgressLine(i + 1, selected.size(), r) << std::endl;
      });
  if (const size_t swept = SweepRunFiles(sock_tmpl); swept > 0) {
    std::cout << "swept " << swept << " file(s) that implementations under test left under this "
              << "run's keys (cuframes-cfc" << getpid() << "-*)" << std::endl;
  }
  rmdir(sock_tmpl);
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (opts.only.empty()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> pairs;
    for (const CaseDef& c : cases)
      pairs.emplace_back(c.id, c.reqs);
    report.coverage = CheckCoverage(spec, pairs, exemptions);
    report.derived = CheckDerivedCoverage(spec, all_ids, row_exemptions, field_exemptions);
    report.coverage_checked = true;
  }
  Decide(spec, &report);
  const std::string console = ConsoleReport(spec, report);
  std::cout << "\n" << console;
  WriteFile(opts.reports_dir + "/conformance.txt", console);
  WriteFile(opts.reports_dir + "/conformance.junit.xml", JunitReport(spec, report));
  WriteFile(opts.reports_dir + "/conformance.json", JsonReport(spec, report));
  WriteFile(opts.reports_dir + "/conformance.md", MarkdownReport(spec, report));
  std::cout << "reports: " << opts.reports_dir << "/conformance.{txt,junit.xml,json,md}\n";
  return report.exit_code;
}

}  // namespace cuframes::conform
