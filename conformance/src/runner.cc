#include "runner.h"

#include <fnmatch.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

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

bool Selected(const CaseDef& def, const std::string& only) {
  if (only.empty()) return true;
  if (fnmatch(only.c_str(), def.id.c_str(), 0) == 0) return true;
  if (def.id.rfind(only, 0) == 0 && only.back() == '/') return true;
  for (const std::string& r : def.reqs) {
    if (fnmatch(only.c_str(), r.c_str(), 0) == 0) return true;
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

int RunConformance(const RunOptions& opts) {
  signal(SIGPIPE, SIG_IGN);
  Spec spec;
  std::string error;
  if (!spec.Load(opts.spec_path, &error)) {
    std::cerr << "cuframes-conform: " << error << "\n";
    return 2;
  }
  std::vector<CaseDef> cases = Registry();
  if (opts.list) {
    for (const CaseDef& c : cases) {
      if (!Selected(c, opts.only)) continue;
      std::cout << c.id << "  [" << RoleName(c.role) << ", proto " << c.needs.proto
                << (c.needs.kind.empty() ? "" : ", " + c.needs.kind)
                << (c.needs.feature.empty() ? "" : ", " + c.needs.feature) << "]  ";
      for (size_t i = 0; i < c.reqs.size(); ++i)
        std::cout << (i ? "," : "") << c.reqs[i];
      std::cout << "\n    " << c.title << "\n";
    }
    return 0;
  }
  Manifest manifest;
  if (!LoadManifest(opts.manifest_path, opts.build_dir, &manifest, &error)) {
    std::cerr << "cuframes-conform: " << error << "\n";
    return 2;
  }
  std::vector<Exemption> exemptions;
  std::string text;
  if (ReadFile(opts.exemptions_path, &text) && !ParseExemptions(text, &exemptions, &error)) {
    std::cerr << "cuframes-conform: " << opts.exemptions_path << ": " << error << "\n";
    return 2;
  }
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
  size_t n = 0;
  for (const CaseDef* def : selected) {
    CaseResult r;
    r.id = def->id;
    r.title = def->title;
    r.reqs = def->reqs;
    r.role = def->role;
    r.rerun = rerun_base + " --only " + ShellQuote(def->id);
    const auto c0 = Clock::now();
    const std::string missing = MissingCapability(*def, manifest);
    if (!missing.empty()) {
      r.outcome = Outcome::kUnsupported;
      r.reason = missing;
    } else {
      CaseContext ctx(env, *def);
      try {
        def->fn(ctx);
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
    ApplyXfail(FindXfail(xfails, def->id), &r);
    r.seconds = std::chrono::duration<double>(Clock::now() - c0).count();
    char line[64];
    std::snprintf(line, sizeof line, "[%3zu/%zu] %-11s ", ++n, selected.size(),
                  OutcomeName(r.outcome));
    std::cout << line << r.id;
    std::snprintf(line, sizeof line, " (%.2f s)", r.seconds);
    std::cout << line;
    if (r.outcome == Outcome::kUnsupported) std::cout << ": " << r.reason;
    if (r.outcome == Outcome::kFail) std::cout << ": " << r.failure.req;
    std::cout << std::endl;
    report.results.push_back(std::move(r));
  }
  rmdir(sock_tmpl);
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (opts.only.empty()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> pairs;
    for (const CaseDef& c : cases)
      pairs.emplace_back(c.id, c.reqs);
    report.coverage = CheckCoverage(spec, pairs, exemptions);
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
