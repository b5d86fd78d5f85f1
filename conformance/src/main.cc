// cuframes-conform: the wire-level conformance harness for cuframes implementations.
//
//   cuframes-conform --manifest M [--reports DIR] [--build-dir DIR] [--only ID-or-glob]
//                    [--strict] [--xfail FILE] [--spec cuframes.json] [--list]
//
// Exit status: 0 when every MUST passes and every MUST is covered, 1 otherwise, 2 for a usage or
// setup error.
#include <cstring>
#include <iostream>
#include <string>

#include "runner.h"

namespace {

void Usage() {
  std::cerr << "usage: cuframes-conform --manifest M [--reports DIR] [--build-dir DIR]\n"
               "                        [--only CASE-GLOB|REQ-ID] [--strict] [--xfail FILE]\n"
               "                        [--spec cuframes.json] [--exemptions FILE] [--list]\n";
}

}  // namespace

int main(int argc, char** argv) {
  cuframes::conform::RunOptions o;
  o.program = argv[0];
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
    else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::cerr << "cuframes-conform: unknown argument " << a << "\n";
      Usage();
      return 2;
    }
  }
  if (o.manifest_path.empty() && !o.list) {
    Usage();
    return 2;
  }
  return cuframes::conform::RunConformance(o);
}
