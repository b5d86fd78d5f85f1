// derive_test.cc: unit tests of what the harness derives from the twin: the stimulus table, the
// row outcomes and paths, field boundaries, the generated cases and the coverage holes logic.
//
// The generated suites (suites/transitions.cc, suites/fields.cc) are linked into this binary, so
// AllCases() here is exactly what cuframes-conform registers.
#include "derive.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "bytes.h"
#include "coverage.h"
#include "report.h"
#include "stimulus.h"
#include "tlv.h"

namespace cuframes::conform {
namespace {

class DeriveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(spec_.Load(CUFRAMES_CONFORM_SPEC_JSON, &err)) << err;
  }
  std::vector<Exemption> LoadEx(const std::string& name) {
    std::ifstream in(std::string(CUFRAMES_CONFORM_SOURCE_DIR) + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<Exemption> ex;
    std::string err;
    EXPECT_TRUE(ParseExemptions(ss.str(), &ex, &err)) << name << ": " << err;
    return ex;
  }
  Spec spec_;
};

const Role kRoles[] = {Role::kSubscriber, Role::kPublisher};

TEST_F(DeriveTest, EveryTwinEventHasAStimulusAndNoStimulusIsStale) {
  for (Role r : kRoles) {
    const StateMachineDef& m = spec_.Machine(MachineName(r));
    for (const std::string& ev : m.events) {
      EXPECT_NE(FindStimulus(r, ev), nullptr) << m.role << " event " << ev;
    }
  }
  for (const Stimulus& s : StimulusTable()) {
    const StateMachineDef& m = spec_.Machine(MachineName(s.iut));
    EXPECT_NE(std::find(m.events.begin(), m.events.end(), s.event), m.events.end())
        << "stimulus for " << s.event << " names no event of the " << m.role << " machine";
  }
}

TEST_F(DeriveTest, StimulusBytesDecodeToTheIntendedMessage) {
  StimParams p;
  p.subscriber_index = 3;
  p.generation = 17;
  p.start_seq = 5;
  for (const Stimulus& s : StimulusTable()) {
    if (!s.bytes) {
      EXPECT_TRUE(s.message.empty()) << s.event << " names a message but builds no bytes";
      continue;
    }
    const std::vector<uint8_t> bytes = s.bytes(spec_, p);
    TlvMsg m;
    size_t used = 0;
    ASSERT_EQ(ParseTlv(bytes, 4096, &m, &used), ParseResult::kOk) << s.event;
    EXPECT_EQ(used, bytes.size()) << s.event << ": exactly one message";
    EXPECT_EQ(spec_.MsgName(m.type), s.message) << s.event;
    const std::string bad = CheckWellFormed(spec_, m);
    if (s.event == "MALFORMED") {
      EXPECT_FALSE(bad.empty()) << "a MALFORMED stimulus must break 3.2 framing";
      EXPECT_NE(m.reserved, 0) << "the MALFORMED stimulus breaks the reserved header bytes";
    } else {
      EXPECT_EQ(bad, "") << s.event;
    }
    auto field = [&](const std::string& st, const std::string& f) {
      const FieldDef& d = spec_.Field(st, f);
      return LoadLe(m.payload, d.offset, d.size);
    };
    if (s.event == "HELLO_REQ_OK") {
      EXPECT_EQ(field("HelloReq", "magic"), spec_.Const("HELLO_MAGIC"));
      EXPECT_LE(field("HelloReq", "min_proto"), field("HelloReq", "max_proto"));
      EXPECT_GE(field("HelloReq", "min_proto"), 1u);
    }
    if (s.event == "HELLO_REQ_BAD_MAGIC") {
      EXPECT_NE(field("HelloReq", "magic"), spec_.Const("HELLO_MAGIC"));
    }
    if (s.event == "HELLO_REQ_REJECT") {
      EXPECT_GT(field("HelloReq", "min_proto"), field("HelloReq", "max_proto"));
    }
    if (s.event == "ATTACH_REQ_OK") {
      EXPECT_EQ(field("AttachReq", "subscriber_index"), 3u);
      EXPECT_EQ(field("AttachReq", "generation"), 17u);
    }
    if (s.event == "ATTACH_REQ_MISMATCH") {
      EXPECT_NE(field("AttachReq", "generation"), 17u);
    }
    if (s.message == "HELLO_RESP" && s.iut == Role::kSubscriber) {
      EXPECT_EQ(field("HelloResp", "status"),
                s.code.empty() || s.kind == StimKind::kBadSegment ? 0u : spec_.Err(s.code))
          << s.event;
      if (field("HelloResp", "status") == 0) {
        EXPECT_EQ(field("HelloResp", "generation"), 17u);
      }
    }
    if (s.message == "ATTACH_RESP") {
      EXPECT_EQ(field("AttachResp", "status"), s.code.empty() ? 0u : spec_.Err(s.code));
      EXPECT_EQ(field("AttachResp", "start_seq"), s.code.empty() ? 5u : 0u);
    }
    if (s.message == "ERROR") {
      EXPECT_EQ(field("ErrorMsg", "code"), spec_.Err(s.code));
    }
    if (s.message == "PING" && s.event == "PING") {
      EXPECT_EQ(field("Ping", "nonce"), p.nonce);
    }
    if (s.event == "WRONG_DIRECTION") {
      const MessageDef& md = spec_.Msg(s.message);
      const std::string sender = s.iut == Role::kSubscriber ? "subscriber" : "publisher";
      EXPECT_EQ(md.direction.rfind(sender, 0), 0u)
          << s.message << " is sent only by a " << sender << " (" << md.direction << ")";
    }
  }
}

TEST_F(DeriveTest, EveryRowOutcomeParses) {
  for (Role r : kRoles) {
    for (const TransitionDef& row : spec_.Machine(MachineName(r)).transitions) {
      const Stimulus* s = FindStimulus(r, row.event);
      ASSERT_NE(s, nullptr);
      RowOutcome o;
      std::string err;
      EXPECT_TRUE(ParseOutcome(row, *s, &o, &err)) << RowCaseId(r, row) << ": " << err;
    }
  }
}

TEST_F(DeriveTest, OutcomeParserResolvesCodesAndRefusesUnknownClauses) {
  const Stimulus& malformed = *FindStimulus(Role::kPublisher, "MALFORMED");
  RowOutcome o;
  std::string err;
  TransitionDef row{"AWAIT_HELLO", "MALFORMED", "CLOSED",
                    "send ERROR(MESSAGE_TOO_LARGE, UNKNOWN_MESSAGE or PROTOCOL as 3.2 says), close",
                    "MESSAGE_TOO_LARGE|UNKNOWN_MESSAGE|PROTOCOL"};
  ASSERT_TRUE(ParseOutcome(row, malformed, &o, &err)) << err;
  EXPECT_EQ(o.send, "ERROR");
  EXPECT_EQ(o.send_code, "PROTOCOL");
  EXPECT_TRUE(o.close);
  EXPECT_EQ(o.report, "PROTOCOL");
  row.action = "send ERROR(STATE), close, free the subscriber slot (5.7)";
  row.error = "STATE";
  ASSERT_TRUE(ParseOutcome(row, malformed, &o, &err)) << err;
  EXPECT_EQ(o.send_code, "STATE");
  EXPECT_TRUE(o.free_slot);
  row.action = "send a postcard, close";
  EXPECT_FALSE(ParseOutcome(row, malformed, &o, &err));
  EXPECT_NE(err.find("postcard"), std::string::npos);
  row.action = "map and validate the segment, its slot (2.8, PKT-HDR-03), send ERROR(STATE), close";
  ASSERT_TRUE(ParseOutcome(row, malformed, &o, &err)) << err;
  EXPECT_EQ(o.internal.size(), 2u);
  row.action =
      "send HELLO_RESP(status = VERSION_MISMATCH or PROTOCOL: the first that fails), close";
  row.error = "HELLO_RESP.status";
  ASSERT_TRUE(ParseOutcome(row, malformed, &o, &err)) << err;
  EXPECT_EQ(o.send_code, "PROTOCOL");
  row.action = "send ERROR(TIMEOUT or STATE), close";
  EXPECT_FALSE(ParseOutcome(row, malformed, &o, &err)) << "PROTOCOL is not an allowed code";
}

TEST_F(DeriveTest, PathsFollowOkRowsTheHarnessCanCause) {
  std::vector<TransitionDef> path;
  std::string err;
  const StateMachineDef& sub = spec_.Machine("subscriber");
  ASSERT_TRUE(PathTo(sub, Role::kSubscriber, "ACTIVE", &path, &err)) << err;
  ASSERT_EQ(path.size(), 2u);
  EXPECT_EQ(path[0].event, "HELLO_RESP_OK");
  EXPECT_EQ(path[1].event, "ATTACH_RESP_OK");
  ASSERT_TRUE(PathTo(sub, Role::kSubscriber, "CLOSED", &path, &err)) << err;
  EXPECT_EQ(path.back().event, "LOCAL_CLOSE");
  EXPECT_EQ(path.back().from, "ACTIVE");
  const StateMachineDef& pub = spec_.Machine("publisher");
  ASSERT_TRUE(PathTo(pub, Role::kPublisher, "CLOSED", &path, &err)) << err;
  ASSERT_EQ(path.size(), 1u);
  EXPECT_EQ(path[0].error, "OK");
  EXPECT_FALSE(PathTo(pub, Role::kPublisher, "NOWHERE", &path, &err));
  for (Role r : kRoles) {
    const StateMachineDef& m = spec_.Machine(MachineName(r));
    for (const std::string& st : m.states) {
      EXPECT_TRUE(PathTo(m, r, st, &path, &err)) << m.role << " " << st << ": " << err;
      for (const TransitionDef& step : path)
        EXPECT_EQ(step.error, "OK");
    }
  }
}

TEST_F(DeriveTest, BoundariesSitAtEachEdgeAndBothSides) {
  std::vector<Boundary> b;
  std::string err;
  auto values = [&] {
    std::set<uint64_t> v;
    for (const Boundary& x : b)
      v.insert(x.value);
    return v;
  };
  auto legal = [&](uint64_t v) {
    for (const Boundary& x : b) {
      if (x.value == v) return x.legal;
    }
    ADD_FAILURE() << "no boundary " << v;
    return false;
  };
  ASSERT_TRUE(Boundaries(spec_, spec_.Field("SegmentHeader", "slot_count"), &b, &err)) << err;
  EXPECT_EQ(values(), (std::set<uint64_t>{1, 2, 3, 255, 256, 257}));
  EXPECT_FALSE(legal(1));
  EXPECT_TRUE(legal(2));
  EXPECT_TRUE(legal(256));
  EXPECT_FALSE(legal(257));
  ASSERT_TRUE(Boundaries(spec_, spec_.Field("SegmentHeader", "header_size"), &b, &err));
  EXPECT_EQ(values(), (std::set<uint64_t>{255, 256, 257}));
  ASSERT_TRUE(Boundaries(spec_, spec_.Field("SegmentHeader", "memory_kind"), &b, &err));
  EXPECT_EQ(values(), (std::set<uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(legal(0));
  EXPECT_FALSE(legal(4));
  ASSERT_TRUE(Boundaries(spec_, spec_.Field("PacketRecordHeader", "flags"), &b, &err));
  EXPECT_EQ(values(), (std::set<uint64_t>{0, 1, 2, 4}));
  EXPECT_FALSE(legal(4));
  ASSERT_TRUE(Boundaries(spec_, spec_.Field("PacketRingHeader", "capacity"), &b, &err));
  EXPECT_FALSE(legal(4095));
  EXPECT_TRUE(legal(4096));
  EXPECT_FALSE(legal(4097));
  EXPECT_TRUE(legal(8192));
  EXPECT_FALSE(legal(12288));
  ASSERT_TRUE(Boundaries(spec_, spec_.Field("TlvHeader", "type"), &b, &err));
  EXPECT_EQ(values(), (std::set<uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  FieldDef odd = spec_.Field("SegmentHeader", "slot_count");
  odd.values = "\"modulo:7\"";
  EXPECT_FALSE(Boundaries(spec_, odd, &b, &err));
  odd.values = "{\"min\": 1, \"step\": 2}";
  EXPECT_FALSE(Boundaries(spec_, odd, &b, &err));
}

TEST_F(DeriveTest, GeneratedCasesCoverEveryRowAndConstrainedField) {
  const std::vector<CaseDef> all = AllCases(spec_);
  std::vector<std::string> ids;
  std::set<std::string> unique;
  for (const CaseDef& c : all) {
    ids.push_back(c.id);
    EXPECT_TRUE(unique.insert(c.id).second) << "duplicate case ID " << c.id;
  }
  size_t rows = 0;
  for (Role r : kRoles) {
    const auto& t = spec_.Machine(MachineName(r)).transitions;
    rows += t.size();
    for (const TransitionDef& row : t) {
      EXPECT_TRUE(unique.count(RowCaseId(r, row))) << RowCaseId(r, row);
    }
  }
  const size_t row_cases = std::count_if(ids.begin(), ids.end(), [](const std::string& id) {
    return std::count(id.begin(), id.end(), '/') == 2 &&
           (id.rfind("4.1/", 0) == 0 || id.rfind("4.2/", 0) == 0) &&
           id.find_first_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos;
  });
  EXPECT_EQ(row_cases, rows) << "one derived case per row of the twin";
  const DerivedCoverage d = CheckDerivedCoverage(spec_, ids, LoadEx("transition_exemptions.txt"),
                                                 LoadEx("field_exemptions.txt"));
  for (const std::string& h : d.holes)
    ADD_FAILURE() << "coverage hole: " << h;
  for (const FieldCoverage& f : d.fields) {
    if (!f.exempt) {
      EXPECT_GE(f.cases, 3u) << f.field << ": an edge and both sides";
    }
  }
}

TEST_F(DeriveTest, CoverageHolesAreReported) {
  std::vector<std::string> ids;
  for (const CaseDef& c : AllCases(spec_))
    ids.push_back(c.id);
  auto has = [](const DerivedCoverage& d, const std::string& needle) {
    for (const std::string& h : d.holes) {
      if (h.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  const std::vector<Exemption> rex = LoadEx("transition_exemptions.txt");
  const std::vector<Exemption> fex = LoadEx("field_exemptions.txt");
  // A row whose case is gone.
  std::vector<std::string> fewer = ids;
  fewer.erase(std::find(fewer.begin(), fewer.end(), "4.2/ACTIVE/ACK_GARBAGE"));
  EXPECT_TRUE(has(CheckDerivedCoverage(spec_, fewer, rex, fex), "4.2/ACTIVE/ACK_GARBAGE"));
  // An exemption naming a row the twin lacks, and one naming no boundary case.
  std::vector<Exemption> rex2 = rex;
  rex2.push_back({"4.1/NOWHERE/PING", "stale"});
  EXPECT_TRUE(has(CheckDerivedCoverage(spec_, ids, rex2, fex), "4.1/NOWHERE/PING"));
  std::vector<Exemption> fex2 = fex;
  fex2.push_back({"2.2/SegmentHeader.slot_count=999", "stale"});
  EXPECT_TRUE(has(CheckDerivedCoverage(spec_, ids, rex, fex2), "slot_count=999"));
  // A constrained field with no case and no exemption; an exempt field that is also tested.
  std::vector<std::string> no_slot_count;
  for (const std::string& id : ids) {
    if (id.find("SegmentHeader.slot_count=") == std::string::npos) no_slot_count.push_back(id);
  }
  EXPECT_TRUE(has(CheckDerivedCoverage(spec_, no_slot_count, rex, fex), "slot_count"));
  fex2 = fex;
  fex2.push_back({"SegmentHeader.slot_count", "said nobody validates it"});
  EXPECT_TRUE(has(CheckDerivedCoverage(spec_, ids, rex, fex2), "exempt but also"));
  EXPECT_TRUE(CheckDerivedCoverage(spec_, ids, rex, fex).holes.empty());
}

// A spec change that adds a row (with an event the stimulus table lacks) and constrains one more
// field: the row gets a case, and the gate names both holes.
TEST_F(DeriveTest, ASpecChangeReachesTheHarnessByItself) {
  std::ifstream in(CUFRAMES_CONFORM_SPEC_JSON);
  nlohmann::json j;
  in >> j;
  j["state_machines"]["subscriber"]["events"].push_back("CUDA_FAILURE");
  j["state_machines"]["subscriber"]["transitions"].push_back(
      {{"from", "HELLO_SENT"},
       {"event", "CUDA_FAILURE"},
       {"to", "CLOSED"},
       {"action", "send DETACH(reason CUDA), close"},
       {"error", "CUDA"}});
  for (auto& f : j["structs"]["SegmentHeader"]["fields"]) {
    if (f["name"] == "width") f["values"] = {{"min", 1}};
  }
  const std::string path = ::testing::TempDir() + "/cuframes-changed.json";
  std::ofstream(path) << j.dump();
  Spec changed;
  std::string err;
  ASSERT_TRUE(changed.Load(path, &err)) << err;
  std::vector<std::string> ids;
  for (const CaseDef& c : AllCases(changed))
    ids.push_back(c.id);
  EXPECT_NE(std::find(ids.begin(), ids.end(), "4.1/HELLO_SENT/CUDA_FAILURE"), ids.end());
  const DerivedCoverage d = CheckDerivedCoverage(changed, ids, LoadEx("transition_exemptions.txt"),
                                                 LoadEx("field_exemptions.txt"));
  std::string all;
  for (const std::string& h : d.holes)
    all += h + "\n";
  EXPECT_NE(all.find("event CUDA_FAILURE has no stimulus"), std::string::npos) << all;
  EXPECT_NE(all.find("4.1/HELLO_SENT/CUDA_FAILURE"), std::string::npos) << all;
  EXPECT_NE(all.find("SegmentHeader.width"), std::string::npos) << all;
}

}  // namespace
}  // namespace cuframes::conform

namespace cuframes::conform {
namespace {

TEST_F(DeriveTest, MatrixShowsEachRowsOutcomeAndHolesFailTheRun) {
  std::vector<std::string> ids;
  for (const CaseDef& c : AllCases(spec_))
    ids.push_back(c.id);
  RunReport r;
  r.coverage_checked = true;
  r.derived = CheckDerivedCoverage(spec_, ids, LoadEx("transition_exemptions.txt"),
                                   LoadEx("field_exemptions.txt"));
  CaseResult pass, fail;
  pass.id = "4.1/HELLO_SENT/PING";
  pass.outcome = Outcome::kPass;
  fail.id = "4.1/HELLO_SENT/PONG";
  fail.outcome = Outcome::kFail;
  fail.failure.req = "SM-SUB-01";
  r.results = {pass, fail};
  const std::string m = TransitionMatrix(spec_, r, "subscriber", false);
  // HELLO_SENT row: events 1..14 in twin order; PING is 8, PONG 9, LOCAL_CLOSE 14 (exempt).
  std::string row;
  std::istringstream in(m);
  for (std::string line; std::getline(in, line);) {
    if (line.find("HELLO_SENT") != std::string::npos) row = line;
  }
  ASSERT_FALSE(row.empty()) << m;
  std::string cells;
  for (size_t i = row.find("HELLO_SENT") + 10; i < row.size(); ++i) {
    if (row[i] != ' ') cells += row[i];
  }
  EXPECT_EQ(cells, "-------PF----E") << m;
  Decide(spec_, &r);
  EXPECT_EQ(r.exit_code, 1);
  r.results = {pass};
  r.derived.holes = {"row 4.1/X/Y is neither tested nor exempt"};
  Decide(spec_, &r);
  EXPECT_EQ(r.exit_code, 1);
  ASSERT_FALSE(r.exit_reasons.empty());
  EXPECT_NE(r.exit_reasons.back().find("COVERAGE HOLE"), std::string::npos);
  r.derived.holes.clear();
  Decide(spec_, &r);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(JunitReport(spec_, r).find("transition-and-field-coverage"), std::string::npos);
  EXPECT_NE(MarkdownReport(spec_, r).find("transition coverage: 120 rows"), std::string::npos);
}

}  // namespace
}  // namespace cuframes::conform
