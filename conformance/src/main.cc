// cuframes-conform: the wire-level conformance harness for cuframes implementations.
//
//   cuframes-conform --manifest M [--reports DIR] [--build-dir DIR] [--only ID-or-glob[,...]]
//                    [--strict] [--xfail FILE] [--spec cuframes.json] [--list [--json]]
//                    [--transition-exemptions FILE] [--field-exemptions FILE] [--jobs N]
//
// Exit status: 0 when every MUST passes and every MUST is covered, 1 otherwise, 2 for a usage or
// setup error.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "runner.h"

namespace {

// --list --json: the selected cases as one JSON array, so that tools (the spec gate's MUST
// coverage check) read which case verifies which requirement without parsing the text list. The
// cases derived from the twin are included; exempt ones (never run) are not.
int ListJson(const cuframes::conform::RunOptions& o) {
  std::string error;
  std::vector<cuframes::conform::CaseDef> cases;
  if (!cuframes::conform::RunnableCases(o, &cases, &error)) {
    std::cerr << "cuframes-conform: " << error << "\n";
    return 2;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const cuframes::conform::CaseDef& c : cases) {
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

}  // namespace

int main(int argc, char** argv) {
  cuframes::conform::RunOptions o;
  o.program = argv[0];
  bool json = false;
  CLI::App app{
      "The wire-level conformance harness of cuframes: plays the missing peer against an\n"
      "implementation's adapters (spec/ADAPTER.md) and reports per requirement ID.",
      "cuframes-conform"};
  app.add_option("--manifest", o.manifest_path, "the implementation's manifest (ADAPTER.md 1)");
  app.add_option("--reports", o.reports_dir, "where the reports go")->capture_default_str();
  app.add_option("--build-dir", o.build_dir, "{build_dir} of the manifest");
  app.add_option("--only", o.only,
                 "comma-separated case globs, requirement IDs or section prefixes (\"3.2/\")");
  app.add_flag("--strict", o.strict, "SHOULDs count like MUSTs");
  app.add_option("--xfail", o.xfail_path, "expected failures: '<case id> [# message]' per line");
  app.add_option("--spec", o.spec_path, "the twin (spec/cuframes.json)")->capture_default_str();
  app.add_option("--exemptions", o.exemptions_path, "requirement coverage exemptions")
      ->capture_default_str();
  app.add_option("--transition-exemptions", o.row_exemptions_path,
                 "state-transition rows exempt from derived cases")
      ->capture_default_str();
  app.add_option("--field-exemptions", o.field_exemptions_path,
                 "constrained fields exempt from boundary cases")
      ->capture_default_str();
  app.add_option("-j,--jobs", o.jobs, "cases run N at a time")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--list", o.list, "list the cases instead of running them");
  app.add_flag("--json", json, "with --list: one JSON array")->needs("--list");
  try {
    app.parse(argc, argv);
    if (o.manifest_path.empty() && !o.list) {
      throw CLI::RequiredError("--manifest (or --list)");
    }
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "cuframes-conform: " << e.what() << "\nRun with --help for the options.\n";
    return 2;
  }
  if (o.list && json) return ListJson(o);
  return cuframes::conform::RunConformance(o);
}
