#include "inject_log.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace cuframes::conform::inject {

namespace {

std::string Hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// Streams as the judge keys them: the legacy default stream has two spellings (0 and
// cudaStreamLegacy = 1); the per-thread default stream (cudaStreamPerThread = 2) is one per thread.
std::string StreamKey(const Record& r) {
  const uint64_t s = r.U("stream");
  if (s == 0 || s == 1) return "legacy";
  if (s == 2) return "per-thread@" + std::to_string(r.U("tid"));
  return Hex(s);
}

}  // namespace

uint64_t Record::U(const char* k) const {
  auto it = j.find(k);
  if (it == j.end() || !it->is_number_unsigned()) {
    if (it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 0) {
      return static_cast<uint64_t>(it->get<int64_t>());
    }
    return 0;
  }
  return it->get<uint64_t>();
}

std::string Record::S(const char* k) const {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string Record::Describe() const {
  std::string out = "line " + std::to_string(line) + ": " + ev;
  const std::string api = S("api");
  if (!api.empty()) out += " (" + api + ")";
  for (const char* k : {"ptr", "event", "stream", "dst", "src"}) {
    if (j.contains(k)) out += std::string(" ") + k + " " + Hex(U(k));
  }
  if (j.contains("flags")) out += " flags " + Hex(U("flags"));
  if (j.contains("handle")) out += " handle " + S("handle").substr(0, 16) + "..";
  if (pid != 0) out += " pid " + std::to_string(pid);
  if (j.contains("rc")) out += " rc " + std::to_string(U("rc"));
  return out;
}

int64_t ProcessLog::Cupti() const {
  for (const Record& r : records) {
    if (r.ev == "init") return static_cast<int64_t>(r.U("cupti"));
  }
  return -1;
}

ProcessLog ParseLog(std::string_view text, const std::string& path, uint64_t pid) {
  ProcessLog log;
  log.path = path;
  log.pid = pid;
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    ++line;
    if (nl == std::string_view::npos) {
      log.cut_tail = true;  // a write cut short: the line is incomplete, whatever it holds
      break;
    }
    const std::string_view s = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (s.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(s, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ev") || !j["ev"].is_string()) {
      ++log.bad_lines;
      continue;
    }
    Record r;
    r.line = line;
    r.ev = j["ev"].get<std::string>();
    r.j = std::move(j);
    r.pid = r.U("pid");
    log.records.push_back(std::move(r));
  }
  return log;
}

std::vector<ProcessLog> ReadLogs(const std::string& dir) {
  std::vector<ProcessLog> out;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("cuda-", 0) == 0 && e.path().extension() == ".jsonl") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string stem = f.stem().string();  // cuda-<pid>
    uint64_t pid = 0;
    try {
      pid = std::stoull(stem.substr(5));
    } catch (...) {
      pid = 0;
    }
    out.push_back(ParseLog(ss.str(), f.string(), pid));
  }
  return out;
}

std::string HexOf(const uint8_t* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[bytes[i] >> 4];
    s += kDigits[bytes[i] & 15];
  }
  return s;
}

std::vector<Finding> JudgeImports(const ProcessLog& log, uint64_t mapping_bytes, bool complete) {
  std::vector<Finding> out;
  struct Mapping {
    std::string handle;
    uint64_t base = 0;
    const Record* open = nullptr;
    std::vector<size_t> uses;  // indices into `uses`
  };
  struct Use {
    const Record* rec;
    bool done = false;
  };
  std::vector<Use> uses;
  std::map<uint64_t, Mapping> open;                    // by base pointer
  std::map<uint64_t, const Record*> closed;            // base -> the close that ended it
  std::map<std::string, std::vector<size_t>> pending;  // stream -> uses not known complete
  std::map<uint64_t, std::vector<size_t>> recorded;    // event -> uses its last record covers

  auto touches = [&](const Mapping& m, uint64_t p) {
    return p >= m.base && p - m.base < (mapping_bytes == 0 ? 1 : mapping_bytes);
  };
  auto complete_all = [&](const std::vector<size_t>& v) {
    for (size_t u : v)
      uses[u].done = true;
  };
  for (const Record& r : log.records) {
    if (log.pid != 0 && r.pid != log.pid) continue;  // a fork child's lines
    if (r.ev == "ipc_open") {
      if (!r.ok()) continue;
      const std::string h = r.S("handle");
      for (const auto& [base, m] : open) {
        if (m.handle == h) {
          out.push_back({"RES-CUDA-01", "handle " + h.substr(0, 16) +
                                            ".. opened again while its mapping is open (" +
                                            m.open->Describe() + "; again " + r.Describe() + ")"});
        }
      }
      Mapping m;
      m.handle = h;
      m.base = r.U("ptr");
      m.open = &r;
      closed.erase(m.base);
      open[m.base] = std::move(m);
    } else if (r.ev == "ipc_close") {
      const uint64_t p = r.U("ptr");
      auto it = open.find(p);
      if (it == open.end()) {
        auto c = closed.find(p);
        out.push_back(
            {"RES-CUDA-02", c != closed.end()
                                ? "mapping " + Hex(p) + " closed twice (" + c->second->Describe() +
                                      "; again " + r.Describe() + ")"
                                : "cudaIpcCloseMemHandle of " + Hex(p) +
                                      ", no mapping this process opened (" + r.Describe() + ")"});
        continue;
      }
      for (size_t u : it->second.uses) {
        if (uses[u].done) continue;
        out.push_back(
            {"RES-CUDA-02", "mapping " + Hex(p) + " closed (" + r.Describe() + ") before its use " +
                                uses[u].rec->Describe() +
                                " was known complete (no synchronize of that stream, of an event "
                                "recorded after it, or of the device in between)"});
        break;
      }
      closed[p] = &r;
      open.erase(it);
    } else if (r.ev == "copy" || r.ev == "launch") {
      if (!r.ok()) continue;
      const size_t id = uses.size();
      bool any = false;
      for (auto& [base, m] : open) {
        bool t = false;
        if (r.ev == "copy") {
          t = touches(m, r.U("dst")) || touches(m, r.U("src"));
        } else if (r.U("scan") == 0) {
          t = true;
        } else if (auto it = r.j.find("ptrs"); it != r.j.end() && it->is_array()) {
          for (const auto& w : *it) {
            if (w.is_number_unsigned() && touches(m, w.get<uint64_t>())) t = true;
          }
        }
        if (t) {
          m.uses.push_back(id);
          any = true;
        }
      }
      if (!any) continue;
      uses.push_back({&r, false});
      pending[StreamKey(r)].push_back(id);
    } else if (r.ev == "event_record") {
      if (r.ok()) recorded[r.U("event")] = pending[StreamKey(r)];
    } else if (r.ev == "stream_wait") {
      if (!r.ok()) continue;
      auto it = recorded.find(r.U("event"));
      if (it == recorded.end()) continue;
      auto& p = pending[StreamKey(r)];
      p.insert(p.end(), it->second.begin(), it->second.end());
    } else if (r.ev == "stream_sync" || r.ev == "stream_query") {
      if (!r.ok()) continue;
      auto& p = pending[StreamKey(r)];
      complete_all(p);
      p.clear();
    } else if (r.ev == "event_sync" || r.ev == "event_query") {
      if (!r.ok()) continue;
      auto it = recorded.find(r.U("event"));
      if (it != recorded.end()) complete_all(it->second);
    } else if (r.ev == "ctx_sync") {
      if (!r.ok()) continue;
      for (auto& u : uses)
        u.done = true;
      pending.clear();
    }
  }
  if (complete) {
    for (const auto& [base, m] : open) {
      out.push_back({"RES-CUDA-02", "mapping " + Hex(base) + " never closed before the process " +
                                        "exited (" + m.open->Describe() + ")"});
    }
  }
  return out;
}

std::vector<Finding> JudgeForks(const ProcessLog& log) {
  std::vector<Finding> out;
  for (const Record& r : log.records) {
    if (r.ev == "fork" || r.ev == "fork_child") {
      out.push_back({"RES-CUDA-04", "fork() after the CUDA driver initialised in " + log.path +
                                        " (" + r.Describe() + ")"});
    }
  }
  return out;
}

std::vector<Finding> JudgeExportedEvents(const ProcessLog& log, const std::string& req,
                                         bool one_stream, size_t* exported) {
  std::vector<Finding> out;
  std::map<uint64_t, const Record*> created;  // event -> its (latest) creation
  std::map<uint64_t, const Record*> exports;  // event -> its export
  std::map<uint64_t, std::map<std::string, const Record*>> streams;  // event -> stream -> record
  for (const Record& r : log.records) {
    if (log.pid != 0 && r.pid != log.pid) continue;
    if (!r.ok()) continue;
    const uint64_t e = r.U("event");
    if (r.ev == "event_create") {
      created[e] = &r;
      exports.erase(e);
      streams.erase(e);
    } else if (r.ev == "ipc_get_event") {
      if (!exports.count(e)) exports[e] = &r;
    } else if (r.ev == "event_record") {
      streams[e].emplace(StreamKey(r), &r);
    }
  }
  constexpr uint64_t kNeeded = 0x4 | 0x2;  // cudaEventInterprocess | cudaEventDisableTiming
  for (const auto& [e, rec] : exports) {
    auto c = created.find(e);
    if (c == created.end()) {
      out.push_back({req, "exported event " + Hex(e) + " (" + rec->Describe() +
                              ") has no creation in the log"});
    } else if ((c->second->U("flags") & kNeeded) != kNeeded) {
      out.push_back({req, "exported event " + Hex(e) + " created with flags " +
                              Hex(c->second->U("flags")) +
                              ", not cudaEventInterprocess | cudaEventDisableTiming (0x6): " +
                              c->second->Describe()});
    }
    if (one_stream && streams[e].size() > 1) {
      std::string s;
      for (const auto& [k, r] : streams[e])
        s += (s.empty() ? "" : "; ") + r->Describe();
      out.push_back({req, "exported event " + Hex(e) + " recorded on " +
                              std::to_string(streams[e].size()) +
                              " streams, one stream only: " + s});
    }
  }
  if (exported != nullptr) *exported = exports.size();
  return out;
}

std::vector<Finding> JudgeFreesAfterCloses(const ProcessLog& log, size_t* accepts) {
  std::vector<Finding> out;
  std::set<uint64_t> mem, events, conns;
  size_t n_accepts = 0;
  for (const Record& r : log.records) {
    if (log.pid != 0 && r.pid != log.pid) continue;
    if (r.ev == "ipc_get_mem" && r.ok()) {
      mem.insert(r.U("ptr"));
    } else if (r.ev == "ipc_get_event" && r.ok()) {
      events.insert(r.U("event"));
    } else if (r.ev == "accept") {
      ++n_accepts;
      conns.insert(r.U("fd"));
    } else if (r.ev == "conn_close") {
      conns.erase(r.U("fd"));
    } else if ((r.ev == "free" && mem.count(r.U("ptr"))) ||
               (r.ev == "event_destroy" && events.count(r.U("event")))) {
      if (!conns.empty()) {
        std::string fds;
        for (uint64_t fd : conns)
          fds += (fds.empty() ? "" : ", ") + std::to_string(fd);
        out.push_back(
            {"RES-CUDA-03", std::string(r.ev == "free" ? "exported slot allocation freed"
                                                       : "exported ready event destroyed") +
                                " while " + std::to_string(conns.size()) +
                                " accepted subscriber connection(s) were still open (fd " + fds +
                                "): " + r.Describe()});
      }
      if (r.ev == "free") mem.erase(r.U("ptr"));
      if (r.ev == "event_destroy") events.erase(r.U("event"));
    }
  }
  if (accepts != nullptr) *accepts = n_accepts;
  return out;
}

AckEventUse TraceAckEvent(const ProcessLog& log, const std::string& handle_hex) {
  AckEventUse u;
  std::set<uint64_t> opened;
  for (const Record& r : log.records) {
    if (log.pid != 0 && r.pid != log.pid) continue;
    if (r.ev == "ipc_open_event" && r.ok() && r.S("handle") == handle_hex) {
      ++u.opens;
      opened.insert(r.U("event"));
      u.evidence += (u.evidence.empty() ? "" : "; ") + r.Describe();
    } else if (r.ev == "event_destroy" && opened.count(r.U("event"))) {
      ++u.destroys;
      if (u.first_destroy == 0) u.first_destroy = r.line;
      opened.erase(r.U("event"));
      u.evidence += (u.evidence.empty() ? "" : "; ") + r.Describe();
    }
  }
  return u;
}

}  // namespace cuframes::conform::inject
