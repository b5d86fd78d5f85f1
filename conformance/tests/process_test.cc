// process_test.cc: unit tests of how the harness starts an adapter: the environment it gets
// (overridden, set empty, removed) and the JSON events read from its stdout.
#include "process.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace cuframes::conform {
namespace {

// Runs a shell that reports the variable CF_PROCESS_TEST as one JSON event: whether it is set and
// its value.
nlohmann::json Report(const std::map<std::string, std::optional<std::string>>& env) {
  const std::string err = (std::filesystem::temp_directory_path() / "cf-process-test.stderr");
  std::string error;
  auto p = Process::Spawn({"/bin/sh", "-c",
                           "printf '{\"event\":\"env\",\"set\":\"%s\",\"value\":\"%s\"}\\n' "
                           "\"${CF_PROCESS_TEST+yes}\" \"$CF_PROCESS_TEST\""},
                          env, err, &error);
  EXPECT_NE(p, nullptr) << error;
  if (!p) return {};
  size_t from = 0;
  const nlohmann::json* ev = p->WaitEvent("env", In(5000), &from);
  EXPECT_TRUE(p->WaitExit(In(5000)));
  EXPECT_EQ(p->exit_code(), 0);
  return ev ? *ev : nlohmann::json{};
}

class SpawnEnv : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(setenv("CF_PROCESS_TEST", "inherited", 1), 0); }
  void TearDown() override { unsetenv("CF_PROCESS_TEST"); }
};

TEST_F(SpawnEnv, InheritsTheHarnessEnvironment) {
  const nlohmann::json ev = Report({});
  EXPECT_EQ(ev.value("set", ""), "yes");
  EXPECT_EQ(ev.value("value", ""), "inherited");
}

TEST_F(SpawnEnv, AValueOverridesIt) {
  const nlohmann::json ev = Report({{"CF_PROCESS_TEST", "mine"}});
  EXPECT_EQ(ev.value("value", ""), "mine");
}

TEST_F(SpawnEnv, AnEmptyValueIsSetEmptyNotRemoved) {
  const nlohmann::json ev = Report({{"CF_PROCESS_TEST", ""}});
  EXPECT_EQ(ev.value("set", ""), "yes");
  EXPECT_EQ(ev.value("value", "x"), "");
}

TEST_F(SpawnEnv, NoValueRemovesTheInheritedVariable) {
  const nlohmann::json ev = Report({{"CF_PROCESS_TEST", std::nullopt}});
  EXPECT_EQ(ev.value("set", "x"), "");
  EXPECT_EQ(ev.value("value", "x"), "");
}

}  // namespace
}  // namespace cuframes::conform
