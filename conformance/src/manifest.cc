#include "manifest.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace cuframes::conform {

namespace {

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

}  // namespace

bool Manifest::ClaimsProto(int v) const {
  return std::find(proto_versions.begin(), proto_versions.end(), v) != proto_versions.end();
}
bool Manifest::ClaimsKind(const std::string& kind) const {
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}
bool Manifest::HasFeature(const std::string& feature) const {
  return std::find(features.begin(), features.end(), feature) != features.end();
}
int Manifest::MaxProto() const {
  return proto_versions.empty() ? 0
                                : *std::max_element(proto_versions.begin(), proto_versions.end());
}

std::vector<std::string> Manifest::Expand(const std::vector<std::string>& tmpl,
                                          const std::vector<std::string>& args) const {
  const std::string manifest_dir =
      std::filesystem::absolute(path).parent_path().lexically_normal().string();
  std::vector<std::string> out;
  bool placed = false;
  for (const std::string& t : tmpl) {
    if (t == "{args}") {
      out.insert(out.end(), args.begin(), args.end());
      placed = true;
      continue;
    }
    out.push_back(
        ReplaceAll(ReplaceAll(t, "{build_dir}", build_dir), "{manifest_dir}", manifest_dir));
  }
  if (!placed) out.insert(out.end(), args.begin(), args.end());
  return out;
}

bool ParseManifest(const std::string& text, const std::string& path, const std::string& build_dir,
                   Manifest* out, std::string* error) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = path + ": not a JSON object";
    return false;
  }
  Manifest m;
  m.path = path;
  try {
    m.name = j.value("name", std::filesystem::path(path).stem().string());
    if (j.contains("publisher")) m.publisher = j.at("publisher").get<std::vector<std::string>>();
    if (j.contains("subscriber")) {
      m.subscriber = j.at("subscriber").get<std::vector<std::string>>();
    }
    m.proto_versions = j.value("proto_versions", std::vector<int>{1});
    m.kinds = j.value("kinds", std::vector<std::string>{"host"});
    m.features = j.value("features", std::vector<std::string>{});
    if (j.contains("env")) m.env = j.at("env").get<std::map<std::string, std::string>>();
    m.build_dir = build_dir;
    if (m.build_dir.empty()) {
      const char* env = std::getenv("CUFRAMES_BUILD_DIR");
      m.build_dir = env && *env ? env : j.value("build_dir", "build");
    }
  } catch (const std::exception& e) {
    *error = path + ": " + e.what();
    return false;
  }
  if (m.publisher.empty() && m.subscriber.empty()) {
    *error = path + ": names neither a publisher nor a subscriber adapter";
    return false;
  }
  if (m.proto_versions.empty()) {
    *error = path + ": proto_versions is empty";
    return false;
  }
  m.build_dir = std::filesystem::absolute(m.build_dir).lexically_normal().string();
  *out = std::move(m);
  return true;
}

bool LoadManifest(const std::string& path, const std::string& build_dir, Manifest* out,
                  std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open manifest " + path;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseManifest(ss.str(), path, build_dir, out, error);
}

}  // namespace cuframes::conform
