// adapter_common.cpp: see adapter_common.h.
#include "adapter_common.h"

#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

#include "cuframes/cuframes.h"

#ifdef CUFRAMES_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace cuframes::adapter {

namespace {
volatile sig_atomic_t g_term = 0;
void OnTerm(int) {
  g_term = 1;
}
}  // namespace

bool CudaUsable() {
  if (!cuframes_cuda_kind_built()) return false;
#ifdef CUFRAMES_WITH_CUDA
  // A build with CUDA on a machine without a driver or device: cudaGetDeviceCount fails or says
  // 0, and a device that cannot be initialised fails cudaFree(nullptr).
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0 && cudaFree(nullptr) == cudaSuccess;
#else
  return false;
#endif
}

bool CudaVmmUsable() {
  return CudaUsable() && cuframes_cuda_vmm_usable(0) != 0;
}

void InstallTermHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnTerm;
  sa.sa_flags = SA_RESTART;  // library calls resume; the adapter's loops poll the flag
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
}

bool TermRequested() {
  return g_term != 0;
}

std::string CodecParamsBytes(uint32_t codec) {
  return "cuframes-params-" + std::to_string(codec);
}

void FillFrame(uint8_t* dst, uint64_t size, uint64_t seq) {
  for (uint64_t i = 0; i < size; ++i)
    dst[i] = FrameByte(seq, i);
}
void FillPacket(uint8_t* dst, uint64_t size, uint64_t seq) {
  for (uint64_t i = 0; i < size; ++i)
    dst[i] = PacketByte(seq, i);
}
bool CheckFrame(const uint8_t* data, uint64_t size, uint64_t seq) {
  for (uint64_t i = 0; i < size; ++i) {
    if (data[i] != FrameByte(seq, i)) return false;
  }
  return true;
}
bool CheckPacket(const uint8_t* data, uint64_t size, uint64_t seq) {
  for (uint64_t i = 0; i < size; ++i) {
    if (data[i] != PacketByte(seq, i)) return false;
  }
  return true;
}

uint64_t Fnv1a64(const uint8_t* data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

namespace {
std::mutex g_out_mu;
bool g_diag = false;
std::string g_socket_path;  // the key's socket: its descriptors are counted as "conns"

// Returns the inodes of the Unix sockets bound to g_socket_path (/proc/net/unix): a publisher's
// listener and the connections it accepted on it.
std::set<unsigned long> KeySocketInodes() {
  std::set<unsigned long> out;
  FILE* f = std::fopen("/proc/net/unix", "re");
  if (f == nullptr) return out;
  char line[4096];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    // Num RefCount Protocol Flags Type St Inode [Path]
    char path[4096] = {0};
    unsigned long inode = 0;
    if (std::sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %4095s", &inode, path) == 2 &&
        g_socket_path == path) {
      out.insert(inode);
    }
  }
  std::fclose(f);
  return out;
}

// Counts the open descriptors of this process, the sockets among them, and the sockets bound to
// the key's socket path (a publisher's listener and accepted connections).
void CountFds(int* fds, int* socks, int* conns) {
  *fds = *socks = *conns = -1;
  // Another thread may accept or close a connection meanwhile: the key's sockets are read before
  // and after listing the descriptors, so that each listed one is found in one of the two.
  std::set<unsigned long> key_inodes = KeySocketInodes();
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return;
  const int self = ::dirfd(d);
  int n = 0;
  std::vector<unsigned long> sockets;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
    ++n;
    char target[64] = {0};
    const ssize_t len = ::readlinkat(self, e->d_name, target, sizeof(target) - 1);
    if (len > 0 && std::strncmp(target, "socket:[", 8) == 0) {
      sockets.push_back(std::strtoul(target + 8, nullptr, 10));
    }
  }
  ::closedir(d);
  key_inodes.merge(KeySocketInodes());
  int c = 0;
  for (unsigned long inode : sockets)
    c += key_inodes.count(inode) != 0 ? 1 : 0;
  *fds = n;
  *socks = static_cast<int>(sockets.size());
  *conns = c;
}

// Counts the lines of /proc/self/maps that contain each needle.
void CountMaps(int* shm, int* nv) {
  *shm = 0;
  *nv = 0;
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (f == nullptr) {
    *shm = *nv = -1;
    return;
  }
  char line[4096];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strstr(line, "/dev/shm/cuframes-") != nullptr) ++*shm;
    if (std::strstr(line, "/dev/nvidia") != nullptr) ++*nv;
  }
  std::fclose(f);
}

std::string DiagFields(const std::string& body) {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto t_ns = static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(ts.tv_nsec);
  std::string r = ",\"t_ns\":" + std::to_string(t_ns);
  if (body.rfind("\"event\":\"frame\"", 0) == 0 || body.rfind("\"event\":\"packet\"", 0) == 0) {
    return r;  // hot events: the clock only
  }
  int shm = 0, nv = 0, fds = 0, socks = 0, conns = 0;
  CountMaps(&shm, &nv);
  CountFds(&fds, &socks, &conns);
  return r + ",\"fds\":" + std::to_string(fds) + ",\"socks\":" + std::to_string(socks) +
         ",\"key_socks\":" + std::to_string(conns) + ",\"shm_maps\":" + std::to_string(shm) +
         ",\"nv_maps\":" + std::to_string(nv);
}
}  // namespace

void SetDiag(bool on, const std::string& key) {
  g_diag = on;
  const char* dir = std::getenv("CUFRAMES_SOCKET_DIR");
  g_socket_path =
      std::string(dir != nullptr && dir[0] != '\0' ? dir : "/tmp") + "/cuframes-" + key + ".sock";
}

void EmitJson(const std::string& body) {
  std::lock_guard<std::mutex> lock(g_out_mu);
  const std::string extra = g_diag ? DiagFields(body) : std::string();
  std::fprintf(stdout, "{%s%s}\n", body.c_str(), extra.c_str());
  std::fflush(stdout);
}

std::string Quote(const std::string& s) {
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      r += buf;
    } else {
      r += c;
    }
  }
  return r + "\"";
}

void EmitError(int status, const std::string& where) {
  EmitJson("\"event\":\"error\",\"code\":" + std::to_string(status) +
           ",\"name\":" + Quote(cuframes_status_name(status)) + ",\"where\":" + Quote(where));
}

bool ProtoCap(const uint64_t* max_proto, uint32_t* out) {
  uint64_t v = 0;
  if (max_proto != nullptr) {
    *out = static_cast<uint32_t>(*max_proto);
    return true;
  }
  const char* env = std::getenv("CUFRAMES_MAX_PROTO");
  if (env == nullptr || env[0] == '\0') {
    *out = 0;
    return true;
  }
  char* end = nullptr;
  v = std::strtoull(env, &end, 10);
  if (end == nullptr || *end != '\0' || v == 0 || v > 0xffff) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace cuframes::adapter
