// scaling_worker.cpp: one process of the N publishers x M subscribers scaling run
// (bench/scaling.py starts N publishers and N*M subscribers of this binary and aggregates).
//
//   cuframes-scaling-worker pub --key K --kind host|cuda --width W --height H --fps F
//                               --frames X --subs M
//   cuframes-scaling-worker sub --key K --kind host|cuda --frames X
//
// A publisher prints {"event":"ready"} once it listens, {"event":"active"} once its M subscribers
// are ACTIVE, then reads "go <T0>" on stdin (T0: CLOCK_MONOTONIC ns, shared by every publisher
// of the run) and commits frame i at T0 + i/F, stamping timestamp_ns with the commit time. It
// writes the frame's seq into the first 8 bytes (the protocol's cost, not a copy of a whole
// frame, is what is measured). After the last frame it waits for end of file on stdin, so that
// every subscriber can read every frame, then prints its result line.
// A subscriber reads X frames, checks each frame's first 8 bytes (HOST: a load; CUDA: an 8-byte
// copy to the host on the frame's stream, after the ready event) and records the delivery
// latency now - timestamp_ns (one clock for every process). Both roles print CPU time
// (getrusage) in their result line. Every wait is bounded.
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "adapter_cli.h"
#include "cuframes/cuframes.h"

#ifdef CUFRAMES_SCALING_CUDA
#include <cuda_runtime.h>
#endif

namespace {

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t CpuNs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1000000000 + static_cast<int64_t>(tv.tv_usec) * 1000;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

struct Args {
  std::string role, key, kind = "host";
  uint64_t width = 1920, height = 1080, subs = 1, frames = 90;
  double fps = 30;
};

// The command line on the adapters' CLI11 wrapper: a role subcommand and its options; returns
// -1 to go on, else the exit status (--help, or a usage error already printed).
int Parse(int argc, char** argv, Args* a) {
  cuframes::adapter::Cli cli("cuframes-scaling-worker",
                             "one process of bench/scaling.py (N publishers x M subscribers)");
  cuframes::adapter::Cli& pub = cli.Subcommand("pub", "a paced publisher");
  cuframes::adapter::Cli& sub = cli.Subcommand("sub", "a subscriber that checks every frame");
  constexpr uint64_t kU32 = 0xffffffffu;
  for (cuframes::adapter::Cli* c : {&pub, &sub}) {
    c->Text("--key", &a->key, {}, "the publisher's key", true);
    c->Text("--kind", &a->kind, {"host", "cuda"}, "memory kind (cuda: CUDA_IPC)");
    c->Number("--frames", &a->frames, 1, kU32, "frames to publish / to read");
  }
  pub.Number("--width", &a->width, 1, kU32, "NV12 width");
  pub.Number("--height", &a->height, 1, kU32, "NV12 height");
  pub.Number("--subs", &a->subs, 1, 64, "subscribers to wait for");
  pub.Positive("--fps", &a->fps, "frames per second");
  if (const int rc = cli.Parse(argc, argv); rc >= 0) return rc;
  a->role = pub.Chosen() ? "pub" : "sub";
  return -1;
}

void Fail(const char* what, int st) {
  std::printf("{\"event\":\"error\",\"where\":\"%s\",\"code\":%d,\"name\":\"%s\"}\n", what, st,
              cuframes_status_name(st));
  std::fflush(stdout);
  std::exit(1);
}

bool Write8(void* dst, uint64_t v, void* stream, bool cuda) {
  if (!cuda) {
    std::memcpy(dst, &v, sizeof v);
    return true;
  }
#ifdef CUFRAMES_SCALING_CUDA
  // Pageable source: the copy has read it when the call returns; the ready event follows on the
  // same stream at commit.
  return cudaMemcpyAsync(dst, &v, sizeof v, cudaMemcpyHostToDevice,
                         static_cast<cudaStream_t>(stream)) == cudaSuccess;
#else
  (void)stream;
  return false;
#endif
}

bool Read8(const void* src, uint64_t* v, void* stream, bool cuda) {
  if (!cuda) {
    std::memcpy(v, src, sizeof *v);
    return true;
  }
#ifdef CUFRAMES_SCALING_CUDA
  auto* s = static_cast<cudaStream_t>(stream);
  return cudaMemcpyAsync(v, src, sizeof *v, cudaMemcpyDeviceToHost, s) == cudaSuccess &&
         cudaStreamSynchronize(s) == cudaSuccess;
#else
  (void)stream;
  return false;
#endif
}

int RunPub(const Args& a) {
  const bool cuda = a.kind == "cuda";
  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = a.key.c_str();
  o.memory_kind = cuda ? CUFRAMES_KIND_CUDA_IPC : CUFRAMES_KIND_HOST;
  o.width = static_cast<uint32_t>(a.width);
  o.height = static_cast<uint32_t>(a.height);
  o.pixel_format = CUFRAMES_PIXEL_NV12;
  o.slot_count = 4;
  o.max_subscribers = static_cast<uint32_t>(a.subs);
  cuframes_publisher* pub = nullptr;
  if (int st = cuframes_pub_create(&o, &pub); st != CUFRAMES_OK) Fail("create", st);
  std::printf("{\"event\":\"ready\"}\n");
  std::fflush(stdout);
  if (int st = cuframes_pub_wait_subscribers(pub, static_cast<uint32_t>(a.subs), 60000);
      st != CUFRAMES_OK) {
    Fail("wait_subscribers", st);
  }
  std::printf("{\"event\":\"active\"}\n");
  std::fflush(stdout);
  char line[64] = {};
  if (std::fgets(line, sizeof line, stdin) == nullptr || std::strncmp(line, "go ", 3) != 0) {
    std::fprintf(stderr, "cuframes-scaling-worker: expected 'go <T0>' on stdin\n");
    return 2;
  }
  const int64_t t0 = std::strtoll(line + 3, nullptr, 10);
  const auto period = static_cast<int64_t>(1e9 / a.fps);
  const int64_t cpu0 = CpuNs();
  uint64_t late = 0;
  int64_t worst_late = 0;
  for (uint64_t i = 0; i < a.frames; ++i) {
    const int64_t due = t0 + static_cast<int64_t>(i) * period;
    timespec ts{static_cast<time_t>(due / 1000000000), static_cast<long>(due % 1000000000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {}
    cuframes_slot slot{};
    if (int st = cuframes_pub_acquire(pub, 5000, &slot); st != CUFRAMES_OK) Fail("acquire", st);
    if (!Write8(slot.data, slot.seq, slot.cuda_stream, cuda)) Fail("write", CUFRAMES_CUDA);
    cuframes_frame_info info{};
    info.width = o.width;
    info.height = o.height;
    info.pixel_format = CUFRAMES_PIXEL_NV12;
    info.payload_bytes = slot.capacity;
    info.user_data = slot.seq;
    info.timestamp_ns = NowNs();
    if (int st = cuframes_pub_commit(pub, &info); st != CUFRAMES_OK) Fail("commit", st);
    // A frame committed after its successor was due missed its deadline.
    const int64_t lateness = info.timestamp_ns - due;
    worst_late = std::max(worst_late, lateness);
    if (lateness > period) ++late;
  }
  const int64_t cpu = CpuNs() - cpu0;
  while (std::fgets(line, sizeof line, stdin) != nullptr) {
  }  // the driver closes stdin once every subscriber is done
  cuframes_pub_destroy(pub);
  std::printf(
      "{\"event\":\"result\",\"role\":\"pub\",\"frames\":%llu,\"late\":%llu,"
      "\"worst_late_ns\":%lld,\"cpu_ns\":%lld}\n",
      static_cast<unsigned long long>(a.frames), static_cast<unsigned long long>(late),
      static_cast<long long>(worst_late), static_cast<long long>(cpu));
  return 0;
}

int RunSub(const Args& a) {
  const bool cuda = a.kind == "cuda";
  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = a.key.c_str();
  o.kinds_mask = CUFRAMES_KIND_BIT(cuda ? CUFRAMES_KIND_CUDA_IPC : CUFRAMES_KIND_HOST);
  o.connect_timeout_ms = 30000;
  cuframes_subscriber* sub = nullptr;
  if (int st = cuframes_sub_connect(&o, &sub); st != CUFRAMES_OK) Fail("connect", st);
  const int64_t cpu0 = CpuNs();
  std::vector<int64_t> lat;
  lat.reserve(a.frames);
  uint64_t wrong = 0;
  uint64_t last = 0;
  while (last < a.frames) {
    cuframes_frame f{};
    if (int st = cuframes_sub_next_frame(sub, 10000, &f); st != CUFRAMES_OK) {
      Fail("next_frame", st);
    }
    uint64_t v = 0;
    if (!Read8(f.data, &v, f.cuda_stream, cuda)) Fail("read", CUFRAMES_CUDA);
    lat.push_back(NowNs() - f.timestamp_ns);
    wrong += v != f.seq;
    last = f.seq;
    if (int st = cuframes_sub_release(sub, &f); st != CUFRAMES_OK) Fail("release", st);
  }
  const int64_t cpu = CpuNs() - cpu0;
  cuframes_sub_close(sub);
  std::printf(
      "{\"event\":\"result\",\"role\":\"sub\",\"frames\":%zu,\"wrong\":%llu,"
      "\"cpu_ns\":%lld,\"latency_ns\":[",
      lat.size(), static_cast<unsigned long long>(wrong), static_cast<long long>(cpu));
  for (size_t i = 0; i < lat.size(); ++i)
    std::printf("%s%lld", i ? "," : "", static_cast<long long>(lat[i]));
  std::printf("]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (const int rc = Parse(argc, argv, &a); rc >= 0) return rc;
  return a.role == "pub" ? RunPub(a) : RunSub(a);
}
