#include "derive.h"

#include <algorithm>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace cuframes::conform {

namespace {

std::string Trim(std::string s) {
  const size_t b = s.find_first_not_of(' ');
  const size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits at ',' and ';' outside parentheses.
std::vector<std::string> Clauses(const std::string& action) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : action) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if ((c == ',' || c == ';') && depth == 0) {
      out.push_back(Trim(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!Trim(cur).empty()) out.push_back(Trim(cur));
  return out;
}

// Splits "A, B or C" / "A|B|C" into names.
std::vector<std::string> Alternatives(std::string s) {
  for (const std::string sep : {" or ", ", ", "|"}) {
    size_t p = 0;
    while ((p = s.find(sep, p)) != std::string::npos)
      s.replace(p, sep.size(), " ");
  }
  std::vector<std::string> out;
  std::string cur;
  for (char c : s + " ") {
    if (c == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

bool IsCodeName(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

// Resolves a code expression against the stimulus. Returns "" and sets *error when impossible.
std::string ResolveCode(const std::string& expr, const Stimulus& stim, std::string* error) {
  std::string e = expr;
  const std::string tail = " as 3.2 says";
  if (e.size() > tail.size() && e.compare(e.size() - tail.size(), tail.size(), tail) == 0) {
    e = e.substr(0, e.size() - tail.size());
  }
  if (e.rfind("status = ", 0) == 0) e = e.substr(9);
  // "A, B or C: how to choose" -- the codes come before the explanation.
  if (const size_t colon = e.find(':'); colon != std::string::npos) e = e.substr(0, colon);
  if (e == "reason 0" || e == "OK") return "OK";
  if (e.rfind("reason ", 0) == 0 && IsCodeName(e.substr(7))) return e.substr(7);
  if (e == "reason = the validation error" || e == "HELLO_RESP.status" ||
      e == "ATTACH_RESP.status" || e == "ERROR.code") {
    if (stim.code.empty()) *error = "the row takes its code from the stimulus, which names none";
    return stim.code;
  }
  const std::vector<std::string> alts = Alternatives(e);
  for (const std::string& a : alts) {
    if (!IsCodeName(a)) {
      *error = "not an error code: \"" + a + "\" in \"" + expr + "\"";
      return "";
    }
  }
  if (alts.size() == 1) return alts[0];
  if (std::find(alts.begin(), alts.end(), stim.code) == alts.end()) {
    *error = "the stimulus's code \"" + stim.code + "\" is not one of \"" + expr + "\"";
    return "";
  }
  return stim.code;
}

// Words that make a clause look like something observable at the wire. A clause without any of
// them names work the IUT does inside itself (map, validate, open handles, write ack_event): the
// outcome it leads to is checked through the observable clauses, and it is kept as a note. A
// clause with one of them that the parser does not understand is an error, never skipped.
bool LooksObservable(const std::string& c) {
  for (const char* w : {"send", "close", "free", "slot state", "reserve", "ignore", "reply"}) {
    if (c.find(w) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

bool ParseOutcome(const TransitionDef& row, const Stimulus& stim, RowOutcome* out,
                  std::string* error) {
  *out = RowOutcome{};
  error->clear();
  for (const std::string& c : Clauses(row.action)) {
    if (c.rfind("ignore", 0) == 0) {
      out->ignore = true;
    } else if (c == "close" || c == "close the socket") {
      out->close = true;
    } else if (c.rfind("report ", 0) == 0) {
      // The error column says the same; it is checked from there.
    } else if (c == "free the subscriber slot (5.7)" || c == "free the slot") {
      out->free_slot = true;
    } else if (c == "slot state EVICTED") {
      out->slot_evicted = true;
    } else if (c == "slot state ACTIVE") {
      out->slot_active = true;
    } else if (c == "reserve a subscriber slot (state ATTACHING, generation+1)") {
      out->reserve_slot = true;
    } else if (c.rfind("send ", 0) == 0) {
      std::string rest = c.substr(5);
      const size_t paren = rest.find('(');
      const size_t with = rest.find(" with the same nonce");
      if (with != std::string::npos) {
        out->send = rest.substr(0, with);
      } else if (paren != std::string::npos && rest.back() == ')') {
        out->send = rest.substr(0, paren);
        std::string args = rest.substr(paren + 1, rest.size() - paren - 2);
        if (out->send == "ATTACH_RESP" && args == "OK, start_seq") args = "OK";
        out->send_code = ResolveCode(args, stim, error);
        if (!error->empty()) return false;
      } else {
        out->send = rest;
      }
      if (!IsCodeName(out->send)) {
        *error = "cannot read the message in \"" + c + "\"";
        return false;
      }
    } else if (!LooksObservable(c)) {
      out->internal.push_back(c);
    } else {
      *error =
          "action clause not understood: \"" + c + "\" (row " + row.from + "/" + row.event + ")";
      return false;
    }
  }
  if (row.error != "OK") {
    out->report = ResolveCode(row.error, stim, error);
    if (!error->empty()) return false;
  }
  return true;
}

std::string RowCaseId(Role iut, const TransitionDef& row) {
  return std::string(iut == Role::kSubscriber ? "4.1/" : "4.2/") + row.from + "/" + row.event;
}

std::optional<Role> RoleOfMachine(const std::string& machine) {
  if (machine == "subscriber") return Role::kSubscriber;
  if (machine == "publisher") return Role::kPublisher;
  return std::nullopt;
}

namespace {

// A row the harness can use to move an IUT forward: OK, into another state, caused by bytes the
// harness sends or by the adapter itself, never by closing or by waiting.
bool Drivable(const TransitionDef& r, Role iut) {
  if (r.error != "OK" || r.to == r.from) return false;
  const Stimulus* s = FindStimulus(iut, r.event);
  if (!s || !s->CausableIn(r.from)) return false;
  return s->kind == StimKind::kMessage || s->kind == StimKind::kLocalClose;
}

}  // namespace

bool PathTo(const StateMachineDef& m, Role iut, const std::string& state,
            std::vector<TransitionDef>* path, std::string* error) {
  path->clear();
  if (m.states.empty()) {
    *error = "the " + m.role + " machine has no states";
    return false;
  }
  std::map<std::string, std::vector<TransitionDef>> best;
  best[m.states[0]] = {};
  std::deque<std::string> q{m.states[0]};
  while (!q.empty()) {
    const std::string s = q.front();
    q.pop_front();
    for (const TransitionDef& r : m.transitions) {
      if (r.from != s || !Drivable(r, iut) || best.count(r.to)) continue;
      best[r.to] = best[s];
      best[r.to].push_back(r);
      q.push_back(r.to);
    }
  }
  auto it = best.find(state);
  if (it == best.end()) {
    *error = "no path of OK rows with causable events reaches " + m.role + " state " + state;
    return false;
  }
  *path = it->second;
  return true;
}

std::optional<TransitionDef> ProbeRow(const StateMachineDef& m, Role iut,
                                      const std::string& state) {
  for (const TransitionDef& r : m.transitions) {
    if (r.from != state || !Drivable(r, iut) || r.to == m.states.back()) continue;
    if (FindStimulus(iut, r.event)->kind != StimKind::kMessage) continue;
    return r;
  }
  return std::nullopt;
}

// ---- constrained fields ----

namespace {

uint64_t MaxOf(const FieldDef& f) {
  return f.size >= 8 ? UINT64_MAX : (uint64_t{1} << (8 * f.size)) - 1;
}

void AddUnique(std::vector<Boundary>* out, const FieldDef& f, uint64_t v, bool legal,
               const std::string& label) {
  if (v > MaxOf(f)) return;
  for (const Boundary& b : *out) {
    if (b.value == v) return;
  }
  out->push_back({v, legal, label});
}

}  // namespace

bool Boundaries(const Spec& spec, const FieldDef& f, std::vector<Boundary>* out,
                std::string* error) {
  out->clear();
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(f.values);
  } catch (const std::exception& e) {
    *error = "unreadable \"values\" of " + f.name + ": " + e.what();
    return false;
  }
  if (v.is_object()) {
    for (auto& [k, x] : v.items()) {
      if (k != "min" && k != "max" && k != "power_of_two") {
        *error = "unknown range key \"" + k + "\" in " + f.name;
        return false;
      }
    }
    const bool pow2 = v.value("power_of_two", false);
    auto legal = [&](uint64_t x) {
      if (v.contains("min") && x < v["min"].get<uint64_t>()) return false;
      if (v.contains("max") && x > v["max"].get<uint64_t>()) return false;
      return !pow2 || (x != 0 && (x & (x - 1)) == 0);
    };
    if (v.contains("min")) {
      const uint64_t lo = v["min"].get<uint64_t>();
      if (lo > 0) AddUnique(out, f, lo - 1, legal(lo - 1), "min-1");
      AddUnique(out, f, lo, legal(lo), "min");
      AddUnique(out, f, lo + 1, legal(lo + 1), "min+1");
    }
    if (v.contains("max")) {
      const uint64_t hi = v["max"].get<uint64_t>();
      if (hi > 0) AddUnique(out, f, hi - 1, legal(hi - 1), "max-1");
      AddUnique(out, f, hi, legal(hi), "max");
      AddUnique(out, f, hi + 1, legal(hi + 1), "max+1");
    } else {
      AddUnique(out, f, MaxOf(f), legal(MaxOf(f)), "type max");
    }
    if (pow2 && v.contains("min")) {
      const uint64_t lo = v["min"].get<uint64_t>();
      AddUnique(out, f, 2 * lo, true, "2*min (power of two)");
      AddUnique(out, f, 3 * lo, false, "3*min (not a power of two)");
    }
    return true;
  }
  if (v.is_array()) {
    std::vector<uint64_t> vals;
    for (auto& x : v) {
      if (x.is_string()) {
        try {
          vals.push_back(spec.Const(x.get<std::string>()));
        } catch (const std::exception& e) {
          *error = f.name + ": " + e.what();
          return false;
        }
      } else {
        vals.push_back(x.get<uint64_t>());
      }
    }
    auto legal = [&](uint64_t x) {
      return std::find(vals.begin(), vals.end(), x) != vals.end();
    };
    for (uint64_t x : vals) {
      const std::string n = std::to_string(x);
      AddUnique(out, f, x, true, n);
      if (x > 0) AddUnique(out, f, x - 1, legal(x - 1), n + "-1");
      AddUnique(out, f, x + 1, legal(x + 1), n + "+1");
    }
    return true;
  }
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    std::map<std::string, uint32_t, std::less<>> table;
    std::string kind, name;
    const size_t colon = s.find(':');
    if (colon == std::string::npos) {
      *error = f.name + ": unknown constraint \"" + s + "\"";
      return false;
    }
    kind = s.substr(0, colon);
    name = s.substr(colon + 1);
    if (name == "error") {
      table = spec.errors();
    } else if (name == "message_type") {
      for (const MessageDef& m : spec.messages())
        table[m.name] = m.type;
    } else {
      try {
        table = spec.EnumValues(name);
      } catch (const std::exception& e) {
        *error = f.name + ": " + e.what();
        return false;
      }
    }
    if (kind == "enum") {
      std::set<uint64_t> vals;
      for (auto& [n, x] : table)
        vals.insert(x);
      for (auto& [n, x] : table)
        AddUnique(out, f, x, true, "enum " + n);
      const uint64_t lo = *vals.begin(), hi = *vals.rbegin();
      if (lo > 0) AddUnique(out, f, lo - 1, false, "below the enum");
      AddUnique(out, f, hi + 1, false, "above the enum");
      for (uint64_t x = lo; x < hi; ++x) {
        if (!vals.count(x)) AddUnique(out, f, x, false, "gap in the enum");
      }
      return true;
    }
    if (kind == "flags") {
      uint64_t all = 0;
      for (auto& [n, x] : table) {
        all |= x;
        AddUnique(out, f, x, true, "flag " + n);
      }
      AddUnique(out, f, 0, true, "no flag");
      for (unsigned bit = 0; bit < 8 * f.size; ++bit) {
        if (!(all & (uint64_t{1} << bit))) {
          AddUnique(out, f, uint64_t{1} << bit, false, "undefined bit " + std::to_string(bit));
          break;
        }
      }
      return true;
    }
    *error = f.name + ": unknown constraint kind \"" + kind + "\"";
    return false;
  }
  *error = f.name + ": unreadable constraint " + f.values;
  return false;
}

std::vector<ConstrainedField> ConstrainedFields(const Spec& spec) {
  std::vector<ConstrainedField> out;
  for (const auto& [st, def] : spec.structs()) {
    for (const FieldDef& f : def.fields) {
      if (!f.values.empty()) out.push_back({st + "." + f.name, st, f});
    }
  }
  return out;
}

}  // namespace cuframes::conform
