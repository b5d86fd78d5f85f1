#include "coverage.h"

#include <algorithm>
#include <set>

#include "derive.h"
#include "stimulus.h"

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

std::string FieldCasePrefix(const Spec& spec, const std::string& st, const std::string& field) {
  return spec.Struct(st).section + "/" + st + "." + field + "=";
}

DerivedCoverage CheckDerivedCoverage(const Spec& spec, const std::vector<std::string>& case_ids,
                                     const std::vector<Exemption>& row_exemptions,
                                     const std::vector<Exemption>& field_exemptions) {
  DerivedCoverage d;
  const std::set<std::string> ids(case_ids.begin(), case_ids.end());
  std::map<std::string, const Exemption*> rex, fex;
  for (const Exemption& e : row_exemptions)
    rex[e.id] = &e;
  for (const Exemption& e : field_exemptions) {
    if (e.id.find('=') == std::string::npos) {
      fex[e.id] = &e;
    } else if (!ids.count(e.id)) {
      d.holes.push_back("field exemption " + e.id + " names no boundary case");
    }
  }
  std::set<std::string> known_rows;
  for (const char* machine : {"subscriber", "publisher"}) {
    const Role iut = *RoleOfMachine(machine);
    const StateMachineDef& m = spec.Machine(machine);
    for (const std::string& ev : m.events) {
      if (!FindStimulus(iut, ev)) {
        d.holes.push_back(std::string(machine) + " event " + ev +
                          " has no stimulus (conformance/src/stimulus.cc)");
      }
    }
    for (const TransitionDef& row : m.transitions) {
      RowCoverage rc;
      rc.machine = machine;
      rc.row = row;
      rc.case_id = RowCaseId(iut, row);
      known_rows.insert(rc.case_id);
      const Stimulus* st = FindStimulus(iut, row.event);
      auto e = rex.find(rc.case_id);
      if (e != rex.end()) {
        rc.mark = RowMark::kExempt;
        rc.reason = e->second->reason;
      } else if (!st) {
        rc.mark = RowMark::kNoStimulus;
      } else if (!st->CausableIn(row.from) || !ids.count(rc.case_id)) {
        rc.mark = RowMark::kNotCausable;
      }
      if (rc.mark == RowMark::kNoStimulus || rc.mark == RowMark::kNotCausable) {
        d.holes.push_back("row " + rc.case_id + " is neither tested nor exempt" +
                          (st ? " (its event cannot be caused in " + row.from + ")" : ""));
      }
      d.rows.push_back(std::move(rc));
    }
  }
  for (const Exemption& e : row_exemptions) {
    if (!known_rows.count(e.id)) {
      d.holes.push_back("transition exemption " + e.id + " names no row of the twin");
    }
  }
  std::set<std::string> known_fields;
  for (const ConstrainedField& cf : ConstrainedFields(spec)) {
    FieldCoverage fc;
    fc.field = cf.name;
    fc.values = cf.field.values;
    known_fields.insert(cf.name);
    const std::string prefix = FieldCasePrefix(spec, cf.st, cf.field.name);
    for (const std::string& id : case_ids) {
      if (id.rfind(prefix, 0) == 0) ++fc.cases;
    }
    auto e = fex.find(cf.name);
    if (e != fex.end()) {
      fc.exempt = true;
      fc.reason = e->second->reason;
      if (fc.cases) {
        d.holes.push_back("field " + cf.name + " is exempt but also has boundary cases: drop one");
      }
    } else if (fc.cases == 0) {
      d.holes.push_back("field " + cf.name + " (values " + cf.field.values +
                        ") has no boundary case and no exemption");
    }
    d.fields.push_back(std::move(fc));
  }
  for (const Exemption& e : field_exemptions) {
    if (e.id.find('=') == std::string::npos && !known_fields.count(e.id)) {
      d.holes.push_back("field exemption " + e.id + " names no constrained field of the twin");
    }
  }
  return d;
}

}  // namespace cuframes::conform
