// report_test.cc: unit tests of the report writers and the exit decision.
#include "report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cuframes::conform {
namespace {

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(spec_.Load(CUFRAMES_CONFORM_SPEC_JSON, &err)) << err;
    CaseResult pass;
    pass.id = "3.2/ok";
    pass.outcome = Outcome::kPass;
    CaseResult fail;
    fail.id = "10.6/bad<case>";
    fail.outcome = Outcome::kFail;
    fail.failure = {"TLV-ERR-01", "ERROR(MESSAGE_TOO_LARGE)", "EOF", "00000000  01\n", ""};
    fail.rerun = "cuframes-conform --manifest m --only '10.6/bad<case>'";
    CaseResult uns;
    uns.id = "10.2/u";
    uns.outcome = Outcome::kUnsupported;
    uns.reason = "proto_version 2 not claimed";
    report_.manifest_name = "m";
    report_.results = {pass, fail, uns};
  }
  Spec spec_;
  RunReport report_;
};

TEST_F(ReportTest, MustFailureFailsTheRun) {
  Decide(spec_, &report_);
  EXPECT_EQ(report_.exit_code, 1);
  report_.results[1].failure.req = "VER-NEG-05";  // a SHOULD
  Decide(spec_, &report_);
  EXPECT_EQ(report_.exit_code, 0);
  report_.strict = true;
  Decide(spec_, &report_);
  EXPECT_EQ(report_.exit_code, 1);
}

TEST_F(ReportTest, XpassAndUncoveredFailTheRun) {
  report_.results = {report_.results[0]};
  report_.results[0].outcome = Outcome::kXpass;
  Decide(spec_, &report_);
  EXPECT_EQ(report_.exit_code, 1);
  report_.results[0].outcome = Outcome::kPass;
  report_.coverage_checked = true;
  report_.coverage.uncovered_must = {"TLV-ERR-02"};
  Decide(spec_, &report_);
  EXPECT_EQ(report_.exit_code, 1);
}

TEST_F(ReportTest, WritersCarryEvidence) {
  Decide(spec_, &report_);
  const std::string console = ConsoleReport(spec_, report_);
  EXPECT_NE(console.find("FAIL 10.6/bad<case> [TLV-ERR-01 MUST]"), std::string::npos);
  EXPECT_NE(console.find("rerun: cuframes-conform"), std::string::npos);
  // 3.2 sorts before 10.2 (numeric sections).
  EXPECT_LT(console.find("\n3.2 "), console.find("\n10.2 "));
  const std::string xml = JunitReport(spec_, report_);
  EXPECT_NE(xml.find("10.6/bad&lt;case&gt;"), std::string::npos);
  EXPECT_NE(xml.find("<skipped"), std::string::npos);
  const auto j = nlohmann::json::parse(JsonReport(spec_, report_));
  EXPECT_EQ(j["totals"]["fail"], 1);
  EXPECT_EQ(j["cases"][1]["failure"]["requirement"], "TLV-ERR-01");
  EXPECT_FALSE(j["cases"][1]["failure"]["requirement_text"].get<std::string>().empty());
  const std::string md = MarkdownReport(spec_, report_);
  EXPECT_NE(md.find("FAIL <code>10.6/bad<case></code>"), std::string::npos);
  EXPECT_EQ(XmlEscape("a&\"\x01"), "a&amp;&quot;");
}

}  // namespace
}  // namespace cuframes::conform
