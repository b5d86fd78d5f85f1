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

// Computes coverage of the twin's requirements by `cases` (case ID, requirement IDs).
Coverage CheckCoverage(const Spec& spec,
                       const std::vector<std::pair<std::string, std::vector<std::string>>>& cases,
                       const std::vector<Exemption>& exemptions);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_COVERAGE_H_
