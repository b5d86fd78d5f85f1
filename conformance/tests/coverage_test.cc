// coverage_test.cc: unit tests of the requirement coverage check and the exemption list.
#include "coverage.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace cuframes::conform {
namespace {

class CoverageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(spec_.Load(CUFRAMES_CONFORM_SPEC_JSON, &err)) << err;
  }
  Spec spec_;
};

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST_F(CoverageTest, UncoveredMustsAreListed) {
  const Coverage c = CheckCoverage(spec_, {{"3.2/x", {"TLV-ERR-01"}}}, {});
  EXPECT_FALSE(Has(c.uncovered_must, "TLV-ERR-01"));
  EXPECT_TRUE(Has(c.uncovered_must, "TLV-ERR-02"));
  EXPECT_TRUE(Has(c.uncovered_should, "VER-NEG-05"));
  EXPECT_FALSE(Has(c.uncovered_must, "MSG-PING-02"));  // a MAY is never required
}

TEST_F(CoverageTest, ExemptionsCountAndUnknownIdsAreFlagged) {
  std::vector<Exemption> ex;
  std::string err;
  ASSERT_TRUE(ParseExemptions("# c\nRES-CUDA-04  needs a CUDA process\nNOPE-01 x\n", &ex, &err));
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].reason, "needs a CUDA process");
  const Coverage c = CheckCoverage(spec_, {{"a", {"RES-CUDA-04", "BOGUS-99"}}}, ex);
  EXPECT_TRUE(Has(c.unknown_reqs, "NOPE-01"));
  EXPECT_TRUE(Has(c.unknown_reqs, "BOGUS-99"));
  EXPECT_TRUE(Has(c.tested_and_exempt, "RES-CUDA-04"));
  EXPECT_FALSE(ParseExemptions("ID-ONLY-01\n", &ex, &err));
}

}  // namespace
}  // namespace cuframes::conform
