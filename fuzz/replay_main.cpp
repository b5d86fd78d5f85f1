// replay_main.cpp: a main() for building a fuzz target without libFuzzer (any compiler): it runs
// LLVMFuzzerTestOneInput once on every file named on the command line, or in a directory named
// there (sorted, not recursive). The fuzz_replay ctests use it to replay each committed corpus in
// the plain gcc build; a failed FUZZ_CHECK aborts, so a regression fails the test.
//
//   replay_<target> PATH...      exit 0: every input ran; 1: an input could not be read;
//                                2: no input was found (an empty corpus is a setup error)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
  // A private copy of exactly the input's size, so that ASan catches reads past its end.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  cuframes::fuzz::ResetKnownBugHits();
  LLVMFuzzerTestOneInput(copy.empty() ? nullptr : copy.data(), copy.size());
  const std::string name = path.filename().string();
  if (name.rfind("known-", 0) == 0) {
    const size_t end = name.find('-', 6);
    const std::string id = name.substr(6, end == std::string::npos ? std::string::npos : end - 6);
    if (cuframes::fuzz::IsKnownBug(id.c_str()) && !cuframes::fuzz::KnownBugHit(id.c_str())) {
      std::fprintf(stderr,
                   "replay: %s no longer reproduces known bug %s: it looks fixed; remove %s from "
                   "fuzz/known_bugs.txt (the input then runs under the strict check)\n",
                   path.c_str(), id.c_str(), id.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  size_t ran = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(arg, ec)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        if (!RunFile(f)) return 1;
        ++ran;
      }
    } else {
      if (!RunFile(arg)) return 1;
      ++ran;
    }
  }
  if (ran == 0) {
    std::fprintf(stderr, "replay: no input found in the paths given\n");
    return 2;
  }
  std::printf("replay: %zu input(s) ran without a finding\n", ran);
  return 0;
}
