// report.h: the run's reports: console table, JUnit XML, JSON with full evidence, and a
// Markdown summary fit for a pull-request comment.
//
// Writers are pure functions of a RunReport so that unit tests can check them byte by byte.
#ifndef CUFRAMES_CONFORMANCE_SRC_REPORT_H_
#define CUFRAMES_CONFORMANCE_SRC_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "coverage.h"
#include "registry.h"
#include "spec_model.h"

namespace cuframes::conform {

struct RunReport {
  std::string manifest_name;
  std::string manifest_path;
  std::string spec_path;
  std::vector<CaseResult> results;
  bool coverage_checked = false;
  Coverage coverage;
  DerivedCoverage derived;  // meaningful when coverage_checked
  int jobs = 1;
  bool strict = false;
  double seconds = 0;
  int exit_code = 0;
  std::vector<std::string> exit_reasons;  // why the run fails, one line each
};

// Returns the level ("MUST", "SHOULD", "MAY", or "HARNESS") of the requirement a failure names.
std::string FailureLevel(const Spec& spec, const Failure& f);

// Decides the exit status: 1 on a FAIL of a MUST (or of a SHOULD with --strict, or a harness
// error), an XPASS, an uncovered MUST (or SHOULD with --strict) or an unknown requirement ID;
// else 0. Fills report->exit_code and exit_reasons.
void Decide(const Spec& spec, RunReport* report);

std::string ConsoleReport(const Spec& spec, const RunReport& report);
std::string JunitReport(const Spec& spec, const RunReport& report);
std::string JsonReport(const Spec& spec, const RunReport& report);
std::string MarkdownReport(const Spec& spec, const RunReport& report);

// Returns the transition matrix of one state machine ("subscriber"/"publisher") as text: a row per
// state, a column per event, each cell P pass, F fail, U unsupported, X xfail, E exempt, ! a hole
// (no stimulus, not causable), - not run, ' ' no row in the twin.
std::string TransitionMatrix(const Spec& spec, const RunReport& report, const std::string& machine,
                             bool markdown);

// Escapes &, <, >, " and ' and drops bytes XML 1.0 forbids.
std::string XmlEscape(std::string_view s);

// Returns the section part of a case ID ("3.2/oversized-length" -> "3.2").
std::string SectionOf(const std::string& case_id);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_REPORT_H_
