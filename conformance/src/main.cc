// cuframes-conform: the wire-level conformance harness for cuframes implementations.
//
//   cuframes-conform --manifest M [--reports DIR] [--build-dir DIR] [--only ID-or-glob]
//                    [--strict] [--xfail FILE] [--spec cuframes.json] [--list [--json]]
//
// Exit status: 0 when every MUST passes and every MUST is covered, 1 otherwise, 2 for a usage or
// setup error.
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "runner.h"

namespace {

// --list --json: the selected cases as one JSON array, so that tools (the spec gate's MUST
// coverage check) read which case verifies which requirement without parsing the text list.
int ListJson(const cuframes::conform::RunOptions& o) {
  nlohmann::json out = nlohmann::json::array();
  for (const cuframes::conform::CaseDef& c : cuframes::conform::Registry()) {
    if (!cuframes::conform::Selected(c, o.only)) continue;
    out.push_back({{"id", c.id},
                   {"title", c.title},
                   {"role", cuframes::conform::RoleName(c.role)},
                   {"proto", c.needs.proto},
                   {"kind", c.needs.kind},
                   {"feature", c.needs.feature},
                   {"requirements", c.reqs}});
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

void Usage() {
  std::cerr << "usage: cuframes-conform --manifest M [--reports DIR] [--build-dir DIR]\n"
               "                        [--only CASE-GLOB|REQ-ID] [--strict] [--xfail FILE]\n"
               "                        [--spec cuframes.json] [--exemptions FILE]\n"
               "                        [--list [--json]]\n";
}

}  // namespace

int main(int argc, char** argv) {
  cuframes::conform::RunOptions o;
  o.program = argv[0];
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      *out = argv[++i];
    };
    if (a == "--manifest")
      value(&o.manifest_path);
    else if (a == "--reports")
      value(&o.reports_dir);
    else if (a == "--build-dir")
      value(&o.build_dir);
    else if (a == "--only")
      value(&o.only);
    else if (a == "--xfail")
      value(&o.xfail_path);
    else if (a == "--spec")
      value(&o.spec_path);
    else if (a == "--exemptions")
      value(&o.exemptions_path);
    else if (a == "--strict")
      o.strict = true;
    else if (a == "--list")
      o.list = true;
    else if (a == "--json")
      json = true;
    else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::cerr << "cuframes-conform: unknown argument " << a << "\n";
      Usage();
      return 2;
    }
  }
  if (json && !o.list) {
    std::cerr << "cuframes-conform: --json goes with --list\n";
    return 2;
  }
  if (o.list && json) return ListJson(o);
  if (o.manifest_path.empty() && !o.list) {
    Usage();
    return 2;
  }
  return cuframes::conform::RunConformance(o);
}
