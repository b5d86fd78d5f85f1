#include "report.h"

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cuframes::conform {

namespace {

struct Counts {
  int pass = 0, fail = 0, unsupported = 0, xfail = 0, xpass = 0;
};

// Orders "2.8" before "10.2": numeric per dotted component.
bool SectionLess(const std::string& a, const std::string& b) {
  std::stringstream sa(a), sb(b);
  std::string pa, pb;
  while (true) {
    const bool ha = static_cast<bool>(std::getline(sa, pa, '.'));
    const bool hb = static_cast<bool>(std::getline(sb, pb, '.'));
    if (!ha || !hb) return !ha && hb;
    const long na = std::strtol(pa.c_str(), nullptr, 10);
    const long nb = std::strtol(pb.c_str(), nullptr, 10);
    if (na != nb) return na < nb;
    if (pa != pb) return pa < pb;
  }
}

struct SectionCmp {
  bool operator()(const std::string& a, const std::string& b) const { return SectionLess(a, b); }
};

std::map<std::string, Counts, SectionCmp> CountBySection(const RunReport& r) {
  std::map<std::string, Counts, SectionCmp> m;
  for (const CaseResult& c : r.results) {
    Counts& k = m[SectionOf(c.id)];
    switch (c.outcome) {
      case Outcome::kPass:
        ++k.pass;
        break;
      case Outcome::kFail:
        ++k.fail;
        break;
      case Outcome::kUnsupported:
        ++k.unsupported;
        break;
      case Outcome::kXfail:
        ++k.xfail;
        break;
      case Outcome::kXpass:
        ++k.xpass;
        break;
    }
  }
  return m;
}

Counts Total(const RunReport& r) {
  Counts t;
  for (const auto& [s, k] : CountBySection(r)) {
    t.pass += k.pass;
    t.fail += k.fail;
    t.unsupported += k.unsupported;
    t.xfail += k.xfail;
    t.xpass += k.xpass;
  }
  return t;
}

std::string ReqText(const Spec& spec, const std::string& id) {
  const Requirement* r = spec.Req(id);
  return r ? r->text : "";
}

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

// Transition-row and field figures for the coverage summaries.
struct DerivedCounts {
  size_t rows = 0, rows_case = 0, rows_exempt = 0, rows_hole = 0;
  size_t fields = 0, fields_tested = 0, fields_exempt = 0, fields_hole = 0, field_cases = 0;
};

DerivedCounts CountDerived(const DerivedCoverage& d) {
  DerivedCounts k;
  for (const RowCoverage& r : d.rows) {
    ++k.rows;
    if (r.mark == RowMark::kCase) ++k.rows_case;
    if (r.mark == RowMark::kExempt) ++k.rows_exempt;
    if (r.mark == RowMark::kNoStimulus || r.mark == RowMark::kNotCausable) ++k.rows_hole;
  }
  for (const FieldCoverage& f : d.fields) {
    ++k.fields;
    k.field_cases += f.cases;
    if (f.exempt) {
      ++k.fields_exempt;
    } else if (f.cases) {
      ++k.fields_tested;
    } else {
      ++k.fields_hole;
    }
  }
  return k;
}

char Cell(const RunReport& r, const RowCoverage* rc) {
  if (!rc) return ' ';
  if (rc->mark == RowMark::kExempt) return 'E';
  if (rc->mark != RowMark::kCase) return '!';
  for (const CaseResult& c : r.results) {
    if (c.id != rc->case_id) continue;
    switch (c.outcome) {
      case Outcome::kPass:
        return 'P';
      case Outcome::kFail:
        return 'F';
      case Outcome::kUnsupported:
        return 'U';
      case Outcome::kXfail:
        return 'X';
      case Outcome::kXpass:
        return 'F';
    }
  }
  return '-';
}

std::string DerivedSummary(const RunReport& r) {
  const DerivedCounts k = CountDerived(r.derived);
  std::ostringstream o;
  o << "transition coverage: " << k.rows << " rows, " << k.rows_case << " tested by a case, "
    << k.rows_exempt << " exempt, " << k.rows_hole << " holes\n";
  o << "field coverage: " << k.fields << " constrained fields, " << k.fields_tested
    << " with boundary cases (" << k.field_cases << " cases), " << k.fields_exempt << " exempt, "
    << k.fields_hole << " holes\n";
  return o.str();
}

}  // namespace

std::string TransitionMatrix(const Spec& spec, const RunReport& r, const std::string& machine,
                             bool markdown) {
  const StateMachineDef& m = spec.Machine(machine);
  std::map<std::pair<std::string, std::string>, const RowCoverage*> cell;
  for (const RowCoverage& rc : r.derived.rows) {
    if (rc.machine == machine) cell[{rc.row.from, rc.row.event}] = &rc;
  }
  std::ostringstream o;
  // Columns are numbered events (a legend follows): names are too long for a table 80 wide.
  if (markdown) {
    o << "| " << machine << " |";
    for (size_t i = 0; i < m.events.size(); ++i)
      o << " " << i + 1 << " |";
    o << "\n|---|";
    for (size_t i = 0; i < m.events.size(); ++i)
      o << ":-:|";
    o << "\n";
    for (const std::string& st : m.states) {
      o << "| " << st << " |";
      for (const std::string& ev : m.events) {
        auto it = cell.find({st, ev});
        const char c = Cell(r, it == cell.end() ? nullptr : it->second);
        o << " " << (c == ' ' ? std::string("&nbsp;") : std::string(1, c)) << " |";
      }
      o << "\n";
    }
  } else {
    char line[64];
    std::snprintf(line, sizeof line, "  %-13s", machine.c_str());
    o << line;
    for (size_t i = 0; i < m.events.size(); ++i) {
      std::snprintf(line, sizeof line, "%3zu", i + 1);
      o << line;
    }
    o << "\n";
    for (const std::string& st : m.states) {
      std::snprintf(line, sizeof line, "  %-13s", st.c_str());
      o << line;
      for (const std::string& ev : m.events) {
        auto it = cell.find({st, ev});
        o << "  " << Cell(r, it == cell.end() ? nullptr : it->second);
      }
      o << "\n";
    }
  }
  o << (markdown ? "\n" : "  ") << "events:";
  for (size_t i = 0; i < m.events.size(); ++i)
    o << " " << i + 1 << "=" << m.events[i];
  o << "\n";
  return o.str();
}

std::string SectionOf(const std::string& case_id) {
  const size_t slash = case_id.find('/');
  return slash == std::string::npos ? case_id : case_id.substr(0, slash);
}

std::string FailureLevel(const Spec& spec, const Failure& f) {
  const Requirement* r = spec.Req(f.req);
  return r ? r->level : "HARNESS";
}

void Decide(const Spec& spec, RunReport* report) {
  report->exit_reasons.clear();
  for (const CaseResult& c : report->results) {
    if (c.outcome == Outcome::kXpass) {
      report->exit_reasons.push_back("XPASS " + c.id + ": listed as expected failure, passed");
    }
    if (c.outcome != Outcome::kFail) continue;
    const std::string level = FailureLevel(spec, c.failure);
    if (level == "MUST" || level == "HARNESS" || (report->strict && level == "SHOULD")) {
      report->exit_reasons.push_back("FAIL " + c.id + " [" + c.failure.req + " " + level + "]");
    }
  }
  if (report->coverage_checked) {
    for (const std::string& id : report->coverage.uncovered_must) {
      report->exit_reasons.push_back("UNCOVERED MUST " + id);
    }
    if (report->strict) {
      for (const std::string& id : report->coverage.uncovered_should) {
        report->exit_reasons.push_back("UNCOVERED SHOULD " + id + " (--strict)");
      }
    }
    for (const std::string& id : report->coverage.unknown_reqs) {
      report->exit_reasons.push_back("UNKNOWN requirement ID " + id + " (not in the twin)");
    }
    for (const std::string& hole : report->derived.holes) {
      report->exit_reasons.push_back("COVERAGE HOLE " + hole);
    }
  }
  report->exit_code = report->exit_reasons.empty() ? 0 : 1;
}

std::string ConsoleReport(const Spec& spec, const RunReport& r) {
  std::ostringstream o;
  char line[160];
  o << "cuframes conformance: " << r.manifest_name << " (" << r.manifest_path << ")\n\n";
  std::snprintf(line, sizeof line, "%-8s %6s %6s %6s %6s %6s %12s\n", "section", "cases", "pass",
                "fail", "xfail", "xpass", "unsupported");
  o << line;
  for (const auto& [s, k] : CountBySection(r)) {
    std::snprintf(line, sizeof line, "%-8s %6d %6d %6d %6d %6d %12d\n", s.c_str(),
                  k.pass + k.fail + k.unsupported + k.xfail + k.xpass, k.pass, k.fail, k.xfail,
                  k.xpass, k.unsupported);
    o << line;
  }
  const Counts t = Total(r);
  std::snprintf(line, sizeof line, "%-8s %6zu %6d %6d %6d %6d %12d\n", "total", r.results.size(),
                t.pass, t.fail, t.xfail, t.xpass, t.unsupported);
  o << line << "\n";
  for (const CaseResult& c : r.results) {
    if (c.outcome != Outcome::kFail && c.outcome != Outcome::kXpass) continue;
    o << OutcomeName(c.outcome) << " " << c.id;
    if (c.outcome == Outcome::kFail) {
      o << " [" << c.failure.req << " " << FailureLevel(spec, c.failure) << "] expected "
        << OneLine(c.failure.expected) << "; actual " << OneLine(c.failure.actual);
    } else {
      o << " " << c.reason;
    }
    o << "\n    rerun: " << c.rerun << "\n";
  }
  if (r.coverage_checked) {
    o << "\ncoverage: " << r.coverage.cases_by_req.size() << " requirement IDs tested, "
      << r.coverage.exempt.size() << " exempt, " << r.coverage.uncovered_must.size()
      << " MUST uncovered, " << r.coverage.uncovered_should.size() << " SHOULD uncovered\n";
    for (const Exemption& e : r.coverage.exempt)
      o << "  exempt " << e.id << ": " << e.reason << "\n";
    for (const std::string& id : r.coverage.uncovered_must)
      o << "  UNCOVERED MUST " << id << "\n";
    for (const std::string& id : r.coverage.uncovered_should)
      o << "  uncovered SHOULD " << id << "\n";
    for (const std::string& id : r.coverage.tested_and_exempt) {
      o << "  note: " << id << " is tested and also exempt; drop the exemption\n";
    }
    o << "\n" << DerivedSummary(r);
    o << "transition matrix (P pass, F fail, U unsupported, X xfail, E exempt, ! hole, "
         "- not run, blank: no row):\n";
    for (const char* m : {"subscriber", "publisher"})
      o << TransitionMatrix(spec, r, m, false);
    for (const RowCoverage& rc : r.derived.rows) {
      if (rc.mark == RowMark::kExempt)
        o << "  exempt row " << rc.case_id << ": " << rc.reason << "\n";
    }
    for (const FieldCoverage& f : r.derived.fields) {
      if (f.exempt) o << "  exempt field " << f.field << ": " << f.reason << "\n";
    }
    for (const std::string& h : r.derived.holes)
      o << "  HOLE " << h << "\n";
  } else {
    o << "\ncoverage: not checked (a subset of cases was run)\n";
  }
  std::snprintf(line, sizeof line, "%.1f", r.seconds);
  o << "\n" << (r.exit_code == 0 ? "RESULT: PASS" : "RESULT: FAIL") << " in " << line << " s\n";
  for (const std::string& why : r.exit_reasons)
    o << "  " << why << "\n";
  return o.str();
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') break;
        out += ch;
    }
  }
  return out;
}

std::string JunitReport(const Spec& spec, const RunReport& r) {
  std::ostringstream o;
  const Counts t = Total(r);
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", r.seconds);
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"cuframes-conformance\" tests=\"" << r.results.size() + 2
    << "\" failures=\"" << t.fail + t.xpass << "\" skipped=\"" << t.unsupported + t.xfail
    << "\" time=\"" << secs << "\">\n";
  std::map<std::string, std::vector<const CaseResult*>, SectionCmp> by;
  for (const CaseResult& c : r.results)
    by[SectionOf(c.id)].push_back(&c);
  for (const auto& [section, cases] : by) {
    o << "  <testsuite name=\"section " << XmlEscape(section) << "\" tests=\"" << cases.size()
      << "\">\n";
    for (const CaseResult* c : cases) {
      std::snprintf(secs, sizeof secs, "%.3f", c->seconds);
      o << "    <testcase classname=\"cuframes.conformance." << XmlEscape(section) << "\" name=\""
        << XmlEscape(c->id) << "\" time=\"" << secs << "\">\n";
      if (c->outcome == Outcome::kFail) {
        o << "      <failure message=\""
          << XmlEscape(c->failure.req + ": expected " + c->failure.expected) << "\" type=\""
          << FailureLevel(spec, c->failure) << "\">"
          << XmlEscape("requirement " + c->failure.req + ": " + ReqText(spec, c->failure.req) +
                       "\nexpected: " + c->failure.expected + "\nactual: " + c->failure.actual +
                       "\n" + c->failure.hex + c->failure.detail + "rerun: " + c->rerun)
          << "</failure>\n";
      } else if (c->outcome == Outcome::kXpass) {
        o << "      <failure message=\"" << XmlEscape(c->reason) << "\" type=\"XPASS\"/>\n";
      } else if (c->outcome == Outcome::kUnsupported || c->outcome == Outcome::kXfail) {
        o << "      <skipped message=\""
          << XmlEscape(OutcomeName(c->outcome) + std::string(": ") + c->reason) << "\"/>\n";
      }
      o << "    </testcase>\n";
    }
    o << "  </testsuite>\n";
  }
  o << "  <testsuite name=\"coverage\" tests=\"2\">\n    <testcase classname=\"cuframes."
       "conformance\" name=\"requirement-coverage\">\n";
  if (r.coverage_checked && !r.coverage.uncovered_must.empty()) {
    std::string ids;
    for (const std::string& id : r.coverage.uncovered_must)
      ids += id + " ";
    o << "      <failure message=\"uncovered MUST requirements\">" << XmlEscape(ids)
      << "</failure>\n";
  } else if (!r.coverage_checked) {
    o << "      <skipped message=\"a subset of cases was run\"/>\n";
  }
  o << "    </testcase>\n    <testcase classname=\"cuframes.conformance\" "
       "name=\"transition-and-field-coverage\">\n";
  if (r.coverage_checked && !r.derived.holes.empty()) {
    std::string holes;
    for (const std::string& h : r.derived.holes)
      holes += h + "\n";
    o << "      <failure message=\"rows or constrained fields neither tested nor exempt\">"
      << XmlEscape(holes) << "</failure>\n";
  } else if (!r.coverage_checked) {
    o << "      <skipped message=\"a subset of cases was run\"/>\n";
  }
  o << "    </testcase>\n  </testsuite>\n</testsuites>\n";
  return o.str();
}

std::string JsonReport(const Spec& spec, const RunReport& r) {
  using nlohmann::json;
  json j;
  j["manifest"] = {{"name", r.manifest_name}, {"path", r.manifest_path}};
  j["spec"] = r.spec_path;
  j["strict"] = r.strict;
  j["seconds"] = r.seconds;
  j["jobs"] = r.jobs;
  j["exit_code"] = r.exit_code;
  j["exit_reasons"] = r.exit_reasons;
  const Counts t = Total(r);
  j["totals"] = {{"cases", r.results.size()}, {"pass", t.pass},   {"fail", t.fail},
                 {"xfail", t.xfail},          {"xpass", t.xpass}, {"unsupported", t.unsupported}};
  json cases = json::array();
  for (const CaseResult& c : r.results) {
    json jc = {{"id", c.id},
               {"title", c.title},
               {"section", SectionOf(c.id)},
               {"role", RoleName(c.role)},
               {"requirements", c.reqs},
               {"outcome", OutcomeName(c.outcome)},
               {"seconds", c.seconds},
               {"rerun", c.rerun}};
    if (!c.reason.empty()) jc["reason"] = c.reason;
    if (c.outcome == Outcome::kFail || c.outcome == Outcome::kXfail) {
      jc["failure"] = {{"requirement", c.failure.req},
                       {"level", FailureLevel(spec, c.failure)},
                       {"requirement_text", ReqText(spec, c.failure.req)},
                       {"expected", c.failure.expected},
                       {"actual", c.failure.actual},
                       {"hex", c.failure.hex},
                       {"detail", c.failure.detail},
                       {"log", c.log}};
    }
    cases.push_back(jc);
  }
  j["cases"] = cases;
  if (r.coverage_checked) {
    json cov;
    cov["uncovered_must"] = r.coverage.uncovered_must;
    cov["uncovered_should"] = r.coverage.uncovered_should;
    cov["unknown_requirements"] = r.coverage.unknown_reqs;
    json ex = json::array();
    for (const Exemption& e : r.coverage.exempt)
      ex.push_back({{"id", e.id}, {"reason", e.reason}});
    cov["exempt"] = ex;
    json by = json::object();
    for (const auto& [id, ids] : r.coverage.cases_by_req)
      by[id] = ids;
    cov["cases_by_requirement"] = by;
    j["coverage"] = cov;
    json rows = json::array();
    for (const RowCoverage& rc : r.derived.rows) {
      json jr = {{"machine", rc.machine}, {"from", rc.row.from},
                 {"event", rc.row.event}, {"to", rc.row.to},
                 {"case", rc.case_id},    {"cell", std::string(1, Cell(r, &rc))}};
      if (rc.mark == RowMark::kExempt) jr["exempt"] = rc.reason;
      rows.push_back(jr);
    }
    json fields = json::array();
    for (const FieldCoverage& f : r.derived.fields) {
      json jf = {{"field", f.field}, {"values", json::parse(f.values)}, {"cases", f.cases}};
      if (f.exempt) jf["exempt"] = f.reason;
      fields.push_back(jf);
    }
    const DerivedCounts k = CountDerived(r.derived);
    j["transition_coverage"] = {{"rows", rows},
                                {"total", k.rows},
                                {"tested", k.rows_case},
                                {"exempt", k.rows_exempt},
                                {"holes", k.rows_hole}};
    j["field_coverage"] = {{"fields", fields},          {"total", k.fields},
                           {"tested", k.fields_tested}, {"cases", k.field_cases},
                           {"exempt", k.fields_exempt}, {"holes", k.fields_hole}};
    j["coverage_holes"] = r.derived.holes;
  }
  return j.dump(2) + "\n";
}

std::string MarkdownReport(const Spec& spec, const RunReport& r) {
  std::ostringstream o;
  const Counts t = Total(r);
  o << "### cuframes conformance: " << (r.exit_code == 0 ? "PASS" : "FAIL") << " ("
    << r.manifest_name << ")\n\n";
  o << t.pass << " passed, " << t.fail << " failed, " << t.xfail << " expected failures, "
    << t.xpass << " unexpected passes, " << t.unsupported << " unsupported, of " << r.results.size()
    << " cases.\n\n";
  o << "| section | pass | fail | xfail | xpass | unsupported |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [s, k] : CountBySection(r)) {
    o << "| " << s << " | " << k.pass << " | " << k.fail << " | " << k.xfail << " | " << k.xpass
      << " | " << k.unsupported << " |\n";
  }
  bool any = false;
  for (const CaseResult& c : r.results) {
    if (c.outcome != Outcome::kFail && c.outcome != Outcome::kXpass) continue;
    if (!any) o << "\n#### Failures\n";
    any = true;
    if (c.outcome == Outcome::kXpass) {
      o << "\n- **XPASS `" << c.id << "`**: " << c.reason << "\n";
      continue;
    }
    o << "\n<details><summary><b>FAIL <code>" << c.id << "</code></b> — " << c.failure.req << " ("
      << FailureLevel(spec, c.failure) << ")</summary>\n\n";
    o << "> " << OneLine(ReqText(spec, c.failure.req)) << "\n\n";
    o << "- expected: " << OneLine(c.failure.expected)
      << "\n- actual: " << OneLine(c.failure.actual) << "\n- rerun: `" << c.rerun << "`\n";
    if (!c.failure.hex.empty()) o << "\n```\n" << c.failure.hex << "```\n";
    o << "\n</details>\n";
  }
  if (r.coverage_checked) {
    o << "\n"
      << r.coverage.cases_by_req.size() << " requirement IDs tested, " << r.coverage.exempt.size()
      << " exempt (not observable at the wire), " << r.coverage.uncovered_must.size()
      << " MUST uncovered.\n";
    for (const std::string& id : r.coverage.uncovered_must)
      o << "- uncovered MUST " << id << "\n";
    o << "\n" << DerivedSummary(r) << "\n";
    for (const char* m : {"subscriber", "publisher"})
      o << TransitionMatrix(spec, r, m, true) << "\n";
    for (const std::string& h : r.derived.holes)
      o << "- coverage hole: " << h << "\n";
  }
  return o.str();
}

}  // namespace cuframes::conform
