// runner.h: selects, runs and judges the registered cases, then writes the reports.
#ifndef CUFRAMES_CONFORMANCE_SRC_RUNNER_H_
#define CUFRAMES_CONFORMANCE_SRC_RUNNER_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "registry.h"

namespace cuframes::conform {

struct RunOptions {
  std::string program = "cuframes-conform";  // argv[0], for rerun commands
  std::string manifest_path;
  std::string build_dir;  // fills {build_dir}; empty: env or manifest default
  std::string reports_dir = "reports/conformance";
  std::string only;  // case-ID glob, or requirement ID
  std::string xfail_path;
  std::string spec_path = CUFRAMES_CONFORM_SPEC_JSON;
  std::string exemptions_path = CUFRAMES_CONFORM_SOURCE_DIR "/coverage_exemptions.txt";
  std::string row_exemptions_path = CUFRAMES_CONFORM_SOURCE_DIR "/transition_exemptions.txt";
  std::string field_exemptions_path = CUFRAMES_CONFORM_SOURCE_DIR "/field_exemptions.txt";
  bool strict = false;
  bool list = false;
  // Cases run this many at a time. Every case has its own key and its own adapters, and results
  // are printed and reported in registration order whatever order they finish in.
  int jobs = 4;
};

// Returns true when `def` is selected by `only` (empty selects all): a comma-separated list whose
// elements are each a glob over the case ID (fnmatch), a requirement ID the case names, or a
// section prefix ("3.2/").
bool Selected(const CaseDef& def, const std::string& only);

// Returns the reason a case cannot run against `m` ("" when it can): a missing adapter role, an
// unclaimed proto version, memory kind or feature (KIND-05, CONF-CLAIM-01).
std::string MissingCapability(const CaseDef& def, const Manifest& m);

// Returns the cases a run would consider: the hand-written ones and those derived from the twin
// at opts.spec_path, less the ones an exemption file lists. Returns false and sets *error when
// the twin or an exemption file cannot be read.
bool RunnableCases(const RunOptions& opts, std::vector<CaseDef>* out, std::string* error);

// Runs `run` for each of `cases`, `jobs` at a time, except that an exclusive case
// (CaseDef::exclusive) runs alone once all the others have finished. Calls `done(i, result)` on
// this thread for every case: in index order for the shared ones, then for each exclusive one.
// Returns the results in index order.
std::vector<CaseResult> RunScheduled(const std::vector<const CaseDef*>& cases, size_t jobs,
                                     const std::function<CaseResult(const CaseDef&)>& run,
                                     const std::function<void(size_t, const CaseResult&)>& done);

// Runs everything. Returns the process exit status (0 pass, 1 fail, 2 usage/setup error).
int RunConformance(const RunOptions& opts);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_RUNNER_H_
