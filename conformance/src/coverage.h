// coverage.h: the requirement coverage check and its exemption list.
//
// Every MUST of the twin must be verified by at least one registered case, or be listed in
// conformance/coverage_exemptions.txt with the reason it cannot be observed at the wire and the
// suite that verifies it instead. SHOULDs are reported, and enforced with --strict.
#ifndef CUFRAMES_CONFORMANCE_SRC_COVERAGE_H_
#define CUFRAMES_CONFORMANCE_SRC_COVERAGE_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spec_model.h"

namespace cuframes::conform {

struct Exemption {
  std::string id;
  std::string reason;
};

// Parses "ID  reason..." lines ('#' comments, blank lines ignored). Returns false and sets
// *error ("line N: why") for a line without a reason.
bool ParseExemptions(std::string_view text, std::vector<Exemption>* out, std::string* error);

struct Coverage {
  std::map<std::string, std::vector<std::string>> cases_by_req;  // requirement -> case IDs
  std::vector<std::string> uncovered_must;
  std::vector<std::string> uncovered_should;
  std::vector<Exemption> exempt;               // exemptions in force
  std::vector<std::string> unknown_reqs;       // named by a case or exemption, absent from the twin
  std::vector<std::string> tested_and_exempt;  // exempt but also tested: drop the exemption
};

// ---- derived coverage: every state-table row and every constrained field ----

enum class RowMark {
  kCase,         // a generated case tests the row
  kExempt,       // listed in conformance/transition_exemptions.txt with a reason
  kNoStimulus,   // the event has no entry in the stimulus table: a hole
  kNotCausable,  // the stimulus cannot cause the event in FROM and the row is not exempt: a hole
};

struct RowCoverage {
  std::string machine;  // "subscriber" / "publisher"
  TransitionDef row;
  std::string case_id;  // 4.1/FROM/EVENT or 4.2/FROM/EVENT
  RowMark mark = RowMark::kCase;
  std::string reason;  // the exemption's reason
};

struct FieldCoverage {
  std::string field;  // Struct.field
  std::string values;
  size_t cases = 0;  // boundary cases registered for it
  bool exempt = false;
  std::string reason;
};

struct DerivedCoverage {
  std::vector<RowCoverage> rows;
  std::vector<FieldCoverage> fields;
  // Why the gate fails, one line each: events without a stimulus, rows neither tested nor
  // exempt, constrained fields without boundary cases or exemption, exemptions naming rows or
  // fields the twin lacks, exemptions of something that is also tested.
  std::vector<std::string> holes;
};

// Computes which rows and fields `case_ids` (every registered case, exempt or not) cover.
// A row is tested when its case ID is registered and not exempt; a field when at least one case
// ID starts with "<section>/<Struct.field>=" (suites/fields.cc) and it is not exempt. A field
// exemption whose ID contains '=' exempts one boundary case and must name a registered one.
DerivedCoverage CheckDerivedCoverage(const Spec& spec, const std::vector<std::string>& case_ids,
                                     const std::vector<Exemption>& row_exemptions,
                                     const std::vector<Exemption>& field_exemptions);

// Returns the ID prefix of a field's boundary cases: "<section>/<Struct>.<field>=".
std::string FieldCasePrefix(const Spec& spec, const std::string& st, const std::string& field);

// Computes coverage of the twin's requirements by `cases` (case ID, requirement IDs).
Coverage CheckCoverage(const Spec& spec,
                       const std::vector<std::pair<std::string, std::vector<std::string>>>& cases,
                       const std::vector<Exemption>& exemptions);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_COVERAGE_H_
