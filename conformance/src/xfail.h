// xfail.h: the expected-failure list (--xfail FILE).
//
// One case ID per line, optionally followed by "# substring": the entry matches only failures
// whose text (requirement, expected, actual) contains the substring. Blank lines and lines
// starting with '#' are comments. A listed case that passes is XPASS and fails the run, so an
// expected failure that starts passing is never silent (BRIEF principle 5).
#ifndef CUFRAMES_CONFORMANCE_SRC_XFAIL_H_
#define CUFRAMES_CONFORMANCE_SRC_XFAIL_H_

#include <string>
#include <string_view>
#include <vector>

#include "registry.h"

namespace cuframes::conform {

struct XfailEntry {
  std::string case_id;
  std::string message;  // empty: any failure matches
  int line = 0;
};

// Parses an xfail file. Returns true on success; on a malformed line returns false and sets
// *error to "line N: why".
bool ParseXfail(std::string_view text, std::vector<XfailEntry>* out, std::string* error);

// Returns the entry for `case_id` or nullptr.
const XfailEntry* FindXfail(const std::vector<XfailEntry>& entries, std::string_view case_id);

// Applies an entry (may be null) to a result: FAIL whose text matches -> XFAIL; PASS -> XPASS;
// FAIL whose text does not contain the message stays FAIL (a different failure than expected).
void ApplyXfail(const XfailEntry* entry, CaseResult* result);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_XFAIL_H_
