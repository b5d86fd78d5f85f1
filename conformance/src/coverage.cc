#include "coverage.h"

#include <set>

namespace cuframes::conform {

bool ParseExemptions(std::string_view text, std::vector<Exemption>* out, std::string* error) {
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string line(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t sp = line.find_first_of(" \t", b);
    const size_t r = sp == std::string::npos ? sp : line.find_first_not_of(" \t\r", sp);
    if (r == std::string::npos) {
      *error = "line " + std::to_string(line_no) + ": an exemption needs a reason";
      return false;
    }
    std::string reason = line.substr(r);
    while (!reason.empty() && (reason.back() == '\r' || reason.back() == ' '))
      reason.pop_back();
    out->push_back({line.substr(b, sp - b), reason});
  }
  return true;
}

Coverage CheckCoverage(const Spec& spec,
                       const std::vector<std::pair<std::string, std::vector<std::string>>>& cases,
                       const std::vector<Exemption>& exemptions) {
  Coverage c;
  std::set<std::string> unknown;
  for (const auto& [case_id, reqs] : cases) {
    for (const std::string& r : reqs) {
      c.cases_by_req[r].push_back(case_id);
      if (!spec.Req(r)) unknown.insert(r);
    }
  }
  std::map<std::string, const Exemption*> ex;
  for (const Exemption& e : exemptions) {
    if (!spec.Req(e.id)) {
      unknown.insert(e.id);
      continue;
    }
    ex[e.id] = &e;
  }
  for (const Requirement& r : spec.requirements()) {
    const bool tested = c.cases_by_req.count(r.id) != 0;
    auto e = ex.find(r.id);
    if (tested && e != ex.end()) c.tested_and_exempt.push_back(r.id);
    if (tested) continue;
    if (e != ex.end()) {
      c.exempt.push_back(*e->second);
      continue;
    }
    if (r.level == "MUST") c.uncovered_must.push_back(r.id);
    if (r.level == "SHOULD") c.uncovered_should.push_back(r.id);
  }
  c.unknown_reqs.assign(unknown.begin(), unknown.end());
  return c;
}

}  // namespace cuframes::conform
