// cuframes-conform: the wire-level conformance harness for cuframes implementations.
//
//   cuframes-conform --manifest M [--reports DIR] [--build-dir DIR] [--only ID-or-glob]
//                    [--strict] [--xfail FILE] [--spec cuframes.json] [--list] [--jobs N]
//
// Exit status: 0 when every MUST passes and every MUST is covered, 1 otherwise, 2 for a usage or
// setup error.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "runner.h"

namespace {

void Usage() {
  std::cerr << "usage: cuframes-conform --manifest M [--reports DIR] [--build-dir DIR]\n"
               "                        [--only CASE-GLOB|REQ-ID] [--strict] [--xfail FILE]\n"
               "                        [--spec cuframes.json] [--exemptions FILE] [--list]\n"
               "                        [--transition-exemptions FILE] [--field-exemptions FILE]\n"
               "                        [--jobs N]  (cases run N at a time, default 4)\n";
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
    else if (a == "--transition-exemptions")
      value(&o.row_exemptions_path);
    else if (a == "--field-exemptions")
      value(&o.field_exemptions_path);
    else if (a == "--jobs" || a == "-j") {
      std::string n;
      value(&n);
      o.jobs = std::atoi(n.c_str());
      if (o.jobs < 1) {
        std::cerr << "cuframes-conform: --jobs needs a number >= 1\n";
        return 2;
      }
    } else if (a == "--strict")
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
