// manifest.h: the IUT manifest of spec/ADAPTER.md: adapter command templates and claims.
//
// A manifest names the publisher and subscriber adapter programs as argv templates and states
// which proto versions, memory kinds and optional features the IUT claims (CONF-CLAIM-01); cases
// that need anything unclaimed are reported UNSUPPORTED, never FAIL.
#ifndef CUFRAMES_CONFORMANCE_SRC_MANIFEST_H_
#define CUFRAMES_CONFORMANCE_SRC_MANIFEST_H_

#include <map>
#include <string>
#include <vector>

namespace cuframes::conform {

struct Manifest {
  std::string name;
  std::string path;                     // the manifest file
  std::string build_dir;                // value of {build_dir}
  std::vector<std::string> publisher;   // argv template; empty: role not offered
  std::vector<std::string> subscriber;  // argv template; empty: role not offered
  std::vector<int> proto_versions;
  std::vector<std::string> kinds;     // "host", "cuda_ipc", "cuda_vmm_fd"
  std::vector<std::string> features;  // "packets", "max-proto", "ack-timeout", ...
  std::map<std::string, std::string> env;

  bool ClaimsProto(int v) const;
  bool ClaimsKind(const std::string& kind) const;
  bool HasFeature(const std::string& feature) const;
  // Returns the highest claimed proto version (0 when none).
  int MaxProto() const;
  // Returns the template with {build_dir} and {manifest_dir} substituted in every element and the
  // element "{args}" replaced by `args` (appended at the end if the template has no "{args}").
  std::vector<std::string> Expand(const std::vector<std::string>& tmpl,
                                  const std::vector<std::string>& args) const;
};

// Parses manifest `text` read from `path`; `build_dir` fills {build_dir} (when empty: env
// CUFRAMES_BUILD_DIR, else the manifest's "build_dir", else "build"). Returns true on success;
// on failure *error names the problem.
bool ParseManifest(const std::string& text, const std::string& path, const std::string& build_dir,
                   Manifest* out, std::string* error);

// Reads and parses the manifest file at `path`. Returns true on success.
bool LoadManifest(const std::string& path, const std::string& build_dir, Manifest* out,
                  std::string* error);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_MANIFEST_H_
