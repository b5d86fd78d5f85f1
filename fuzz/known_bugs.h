// known_bugs.h: the open reference bugs of fuzz/known_bugs.txt, as seen by the fuzz targets and
// the property tests. CMake compiles the list in as CUFRAMES_FUZZ_KNOWN_BUGS ("B1,B2,...");
// the environment variable CUFRAMES_FUZZ_SKIP_KNOWN replaces it at run time ("" = strict: every
// bug is enforced as the spec says; "all" = every id is known).
#ifndef CUFRAMES_FUZZ_KNOWN_BUGS_H_
#define CUFRAMES_FUZZ_KNOWN_BUGS_H_

#include <cstdlib>
#include <string_view>

#ifndef CUFRAMES_FUZZ_KNOWN_BUGS
#define CUFRAMES_FUZZ_KNOWN_BUGS ""
#endif

namespace cuframes::fuzz {

// Returns true if the comma-separated `list` names `id` (or is "all").
inline bool ListNamesBug(std::string_view list, std::string_view id) {
  if (list == "all") return true;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    if (list.substr(start, end - start) == id) return true;
    start = end + 1;
  }
  return false;
}

// Returns true if `id` is on the known-bug list in force.
inline bool IsKnownBug(std::string_view id) {
  const char* env = std::getenv("CUFRAMES_FUZZ_SKIP_KNOWN");
  return ListNamesBug(env != nullptr ? env : CUFRAMES_FUZZ_KNOWN_BUGS, id);
}

}  // namespace cuframes::fuzz

#endif  // CUFRAMES_FUZZ_KNOWN_BUGS_H_
