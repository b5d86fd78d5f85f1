#include "xfail.h"

namespace cuframes::conform {

namespace {

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

bool ParseXfail(std::string_view text, std::vector<XfailEntry>* out, std::string* error) {
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    XfailEntry e;
    e.line = line_no;
    const size_t hash = t.find('#');
    e.case_id = Trim(std::string_view(t).substr(0, hash));
    if (hash != std::string::npos) e.message = Trim(std::string_view(t).substr(hash + 1));
    if (e.case_id.find_first_of(" \t") != std::string::npos) {
      *error =
          "line " + std::to_string(line_no) + ": one case ID per line, got \"" + e.case_id + "\"";
      return false;
    }
    out->push_back(e);
  }
  return true;
}

const XfailEntry* FindXfail(const std::vector<XfailEntry>& entries, std::string_view case_id) {
  for (const XfailEntry& e : entries) {
    if (e.case_id == case_id) return &e;
  }
  return nullptr;
}

void ApplyXfail(const XfailEntry* entry, CaseResult* r) {
  if (!entry) return;
  if (r->outcome == Outcome::kPass) {
    r->outcome = Outcome::kXpass;
    r->reason =
        "listed as an expected failure (xfail line " + std::to_string(entry->line) + ") but passed";
    return;
  }
  if (r->outcome != Outcome::kFail) return;
  const std::string text = r->failure.req + " " + r->failure.expected + " " + r->failure.actual;
  if (entry->message.empty() || text.find(entry->message) != std::string::npos) {
    r->outcome = Outcome::kXfail;
    r->reason = "expected failure (xfail line " + std::to_string(entry->line) + ")";
  } else {
    r->reason =
        "listed as an expected failure with \"" + entry->message + "\", but failed differently";
  }
}

}  // namespace cuframes::conform
