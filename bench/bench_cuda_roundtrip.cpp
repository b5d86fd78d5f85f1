// bench_cuda_roundtrip.cpp: the GPU round trip between two processes on one GPU, raw CUDA IPC
// (the floor) against the same round trip through cuframes' CUDA_IPC kind, in one binary.
//
// One iteration, both variants: the publisher's kernel writes a stamp into the frame buffer;
// the subscriber process's stream waits for it (an IPC event), its kernel reads and checks the
// stamp; the publisher's stream waits for that (the subscriber's IPC ACK event) and the
// publisher's host observes it (cudaStreamSynchronize). Host-side signalling between the two
// processes is a futex wake in each direction. The frame buffer is a 4K NV12 frame (12,441,600
// bytes, allocated once, opened once by the subscriber); the kernels touch its first
// <touch_bytes> bytes (4 KiB: the synchronisation alone; the whole frame: plus memory traffic).
//
//   BM_Floor_CudaRoundTrip/<touch>  raw: cudaMalloc + cudaIpcGetMemHandle, one interprocess event
//       each way, futex words on a shared page. Per iteration: [pub] WriteStamp(n), record E1,
//       post n -> [sub] wake, cudaStreamWaitEvent(E1), CheckStamp(n), record E2, post n ->
//       [pub] wake, cudaStreamWaitEvent(E2), cudaStreamSynchronize.
//   BM_CudaRoundTrip/<touch>  cuframes (public C API, CUDA_IPC kind, slot_count 2): the
//       subscriber holds the newest frame and releases the previous one when the next arrives, so
//       acquire(n) (slot of n-2) returns once the subscriber got frame n-1, with the publisher's
//       stream waiting on the subscriber's ACK event, which was recorded after CheckStamp(n-1).
//       Per iteration: [pub] acquire(n), cudaStreamSynchronize(slot stream) (= CheckStamp(n-1)
//       done), WriteStamp(n), commit(n) (records the slot's ready event, wakes) -> [sub]
//       next_frame(n) (its stream waits on the ready event), CheckStamp(n), release(n-1) (records
//       the ACK event, wakes) -> [pub] acquire(n+1) ...
//       That is the floor's critical path plus what cuframes adds: its bookkeeping, the ACK scan
//       and the event record/wait calls (about 1.6 us of host time each, BRIEF section 4).
// Target: BM_CudaRoundTrip <= 1.1x BM_Floor_CudaRoundTrip (label target=x<=1.1). Without MPS
// each direction pays a GPU context switch between the two processes (BRIEF: ~281 us raw round
// trip); with MPS ~27.5 us. bench/run_gpu_bench.sh runs this binary with MPS off, then on.
//
// Without a CUDA device (or without the CUDA kind in libcuframes) every benchmark is reported as
// an error whose message starts with "SKIP:" and the reason, and the binary exits 0.
// Children are this binary re-executed with --cuda-child (posix_spawn, never fork).
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#include <cuframes/cuframes.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cuda_kernels.h"
#include "bench_util.h"

namespace cuframes::bench {
namespace {

constexpr char kChildFlag[] = "--cuda-child";
constexpr uint32_t kStop = UINT32_MAX;
constexpr uint64_t kFrameBytes = 3840ull * 2160ull * 3ull / 2ull;  // 4K NV12
constexpr int kWaitMs = 10000;
constexpr int kStartMs = 60000;  // a child's CUDA start-up (context, IPC opens)
constexpr int kWarmup = 50;
constexpr unsigned kEventFlags = cudaEventInterprocess | cudaEventDisableTiming;

std::string g_skip;  // non-empty: why nothing can run here

struct Control {
  alignas(64) uint32_t ping;   // parent -> child: frame seq
  alignas(64) uint32_t pong;   // child -> parent: frame seq done / cuframes child: 1 = EOS seen
  alignas(64) uint32_t ready;  // child -> parent: set up
  alignas(64) unsigned char mem_handle[sizeof(cudaIpcMemHandle_t)];
  unsigned char ready_event[sizeof(cudaIpcEventHandle_t)];
  unsigned char ack_event[sizeof(cudaIpcEventHandle_t)];  // child-written
};

std::string CudaError(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e);
}

void SetLatencyCounters(benchmark::State& state, std::vector<double>& lat_ns) {
  state.counters["p50_us"] = Quantile(lat_ns, 0.50) / 1e3;
  state.counters["p99_us"] = Quantile(lat_ns, 0.99) / 1e3;
}

size_t ReserveFor(const benchmark::State& state) {
  return static_cast<size_t>(std::min<benchmark::IterationCount>(state.max_iterations, 1 << 20));
}

// ------------------------------------------------------------------------------ raw floor

int RawChild(int fd, size_t touch) {
  SharedPage page(fd);
  if (!page.ok()) return 2;
  auto* c = page.as<Control>();
  cudaStream_t stream = nullptr;
  void* buf = nullptr;
  cudaEvent_t e1 = nullptr, e2 = nullptr;
  unsigned* errors = nullptr;
  cudaIpcMemHandle_t mh;
  cudaIpcEventHandle_t eh;
  std::memcpy(&mh, c->mem_handle, sizeof(mh));
  std::memcpy(&eh, c->ready_event, sizeof(eh));
  cudaError_t e = cudaSetDevice(0);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaIpcOpenMemHandle(&buf, mh, cudaIpcMemLazyEnablePeerAccess);
  if (e == cudaSuccess) e = cudaIpcOpenEventHandle(&e1, eh);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&e2, kEventFlags);
  cudaIpcEventHandle_t ah{};
  if (e == cudaSuccess) e = cudaIpcGetEventHandle(&ah, e2);
  if (e == cudaSuccess) e = cudaMalloc(&errors, sizeof(unsigned));
  if (e == cudaSuccess) e = cudaMemset(errors, 0, sizeof(unsigned));
  if (e != cudaSuccess) {
    std::fprintf(stderr, "raw child: set-up: %s\n", cudaGetErrorName(e));
    return 2;
  }
  std::memcpy(c->ack_event, &ah, sizeof(ah));
  Post(&c->ready, 1);
  int rc = 0;
  for (uint32_t n = 1;; ++n) {
    const uint32_t v = WaitAtLeast(&c->ping, n, kWaitMs);
    if (v == kStop) break;
    if (v != n) {
      rc = 3;
      break;
    }
    e = cudaStreamWaitEvent(stream, e1, 0);
    if (e == cudaSuccess) e = LaunchCheckStamp(buf, n, touch, errors, stream);
    if (e == cudaSuccess) e = cudaEventRecord(e2, stream);
    if (e != cudaSuccess) {
      std::fprintf(stderr, "raw child: frame %u: %s\n", n, cudaGetErrorName(e));
      rc = 2;
      break;
    }
    Post(&c->pong, n);
  }
  unsigned host_errors = 0;
  cudaStreamSynchronize(stream);
  cudaMemcpy(&host_errors, errors, sizeof(host_errors), cudaMemcpyDeviceToHost);
  if (host_errors != 0) {
    std::fprintf(stderr, "raw child: %u words with a wrong stamp\n", host_errors);
    rc = rc == 0 ? 1 : rc;
  }
  cudaFree(errors);
  cudaEventDestroy(e2);
  cudaEventDestroy(e1);
  cudaIpcCloseMemHandle(buf);
  cudaStreamDestroy(stream);
  return rc;
}

void BM_Floor_CudaRoundTrip(benchmark::State& state) {
  if (!g_skip.empty()) return state.SkipWithError(("SKIP: " + g_skip).c_str());
  const auto touch = static_cast<size_t>(state.range(0));
  SharedPage page;
  if (!page.ok()) return state.SkipWithError("shared page");
  auto* c = page.as<Control>();
  std::string error;
  cudaStream_t stream = nullptr;
  void* buf = nullptr;
  cudaEvent_t e1 = nullptr, e2 = nullptr;
  cudaError_t e = cudaSetDevice(0);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) e = cudaMalloc(&buf, kFrameBytes);
  if (e == cudaSuccess) e = cudaMemset(buf, 0, kFrameBytes);
  if (e == cudaSuccess) e = cudaEventCreateWithFlags(&e1, kEventFlags);
  cudaIpcMemHandle_t mh{};
  cudaIpcEventHandle_t eh{};
  if (e == cudaSuccess) e = cudaIpcGetMemHandle(&mh, buf);
  if (e == cudaSuccess) e = cudaIpcGetEventHandle(&eh, e1);
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  if (e != cudaSuccess) error = CudaError("set-up", e);
  pid_t pid = -1;
  if (error.empty()) {
    std::memcpy(c->mem_handle, &mh, sizeof(mh));
    std::memcpy(c->ready_event, &eh, sizeof(eh));
    pid = SpawnSelf({kChildFlag, "raw", std::to_string(page.fd()), std::to_string(touch)});
    if (pid < 0) error = "posix_spawn";
  }
  if (error.empty() && WaitAtLeast(&c->ready, 1, kStartMs) != 1) error = "child set-up failed";
  if (error.empty()) {
    cudaIpcEventHandle_t ah;
    std::memcpy(&ah, c->ack_event, sizeof(ah));
    if ((e = cudaIpcOpenEventHandle(&e2, ah)) != cudaSuccess)
      error = CudaError("open ACK event", e);
  }
  uint32_t n = 0;
  auto round = [&]() -> bool {
    ++n;
    e = LaunchWriteStamp(buf, n, touch, stream);
    if (e == cudaSuccess) e = cudaEventRecord(e1, stream);
    if (e != cudaSuccess) {
      error = CudaError("write/record", e);
      return false;
    }
    Post(&c->ping, n);
    if (WaitAtLeast(&c->pong, n, kWaitMs) != n) {
      error = "subscriber did not answer";
      return false;
    }
    e = cudaStreamWaitEvent(stream, e2, 0);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) {
      error = CudaError("wait ACK", e);
      return false;
    }
    return true;
  };
  for (int i = 0; error.empty() && i < kWarmup; ++i)
    round();
  std::vector<double> lat;
  lat.reserve(ReserveFor(state));
  for (auto _ : state) {
    if (!error.empty()) break;
    const auto t0 = Clock::now();
    round();
    lat.push_back(static_cast<double>((Clock::now() - t0).count()));
  }
  if (pid > 0) {
    Post(&c->ping, kStop);
    const int status = WaitChild(pid, kStartMs);
    if (error.empty() && !ExitedOk(status)) error = "subscriber process failed (see stderr)";
  }
  if (e2 != nullptr) cudaEventDestroy(e2);
  if (e1 != nullptr) cudaEventDestroy(e1);
  if (buf != nullptr) cudaFree(buf);
  if (stream != nullptr) cudaStreamDestroy(stream);
  if (!error.empty()) return state.SkipWithError(error.c_str());
  SetLatencyCounters(state, lat);
  state.SetLabel("raw CUDA IPC events both ways + futex");
}

// ------------------------------------------------------------------------------ cuframes

int CuframesChild(const char* key, int fd, size_t touch) {
  SharedPage page(fd);
  if (!page.ok()) return 2;
  auto* c = page.as<Control>();
  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = key;
  o.kinds_mask = CUFRAMES_KIND_BIT(CUFRAMES_KIND_CUDA_IPC);
  o.cuda_device = 0;
  o.connect_timeout_ms = kStartMs;
  cuframes_subscriber* sub = nullptr;
  int s = cuframes_sub_connect(&o, &sub);
  if (s != CUFRAMES_OK) {
    std::fprintf(stderr, "cuframes child: connect: %s\n", cuframes_status_name(s));
    return 2;
  }
  unsigned* errors = nullptr;
  cudaError_t e = cudaMalloc(&errors, sizeof(unsigned));
  if (e == cudaSuccess) e = cudaMemset(errors, 0, sizeof(unsigned));
  if (e != cudaSuccess) {
    std::fprintf(stderr, "cuframes child: %s\n", cudaGetErrorName(e));
    cuframes_sub_close(sub);
    return 2;
  }
  int rc = 0;
  cuframes_frame held{};
  bool have = false;
  bool eos = false;
  cudaStream_t stream = nullptr;
  for (;;) {
    cuframes_frame f;
    s = cuframes_sub_next_frame(sub, eos ? kStartMs : kWaitMs, &f);
    if (s == CUFRAMES_PEER_CLOSED && eos) break;
    if (s != CUFRAMES_OK) {
      std::fprintf(stderr, "cuframes child: next_frame: %s\n", cuframes_status_name(s));
      rc = 2;
      break;
    }
    stream = static_cast<cudaStream_t>(f.cuda_stream);
    if (f.flags & CUFRAMES_FRAME_END_OF_STREAM) {
      cudaStreamSynchronize(stream);
      if (have) cuframes_sub_release(sub, &held);
      cuframes_sub_release(sub, &f);
      have = false;
      eos = true;
      Post(&c->pong, 1);
      continue;
    }
    if ((e = LaunchCheckStamp(f.data, f.seq, touch, errors, stream)) != cudaSuccess) {
      std::fprintf(stderr, "cuframes child: check: %s\n", cudaGetErrorName(e));
      rc = 2;
      break;
    }
    if (have && (s = cuframes_sub_release(sub, &held)) != CUFRAMES_OK) {
      std::fprintf(stderr, "cuframes child: release: %s\n", cuframes_status_name(s));
      rc = 2;
      break;
    }
    held = f;
    have = true;
  }
  if (stream != nullptr) cudaStreamSynchronize(stream);
  unsigned host_errors = 0;
  cudaMemcpy(&host_errors, errors, sizeof(host_errors), cudaMemcpyDeviceToHost);
  cudaFree(errors);
  if (host_errors != 0) {
    std::fprintf(stderr, "cuframes child: %u words with a wrong stamp\n", host_errors);
    rc = rc == 0 ? 1 : rc;
  }
  cuframes_sub_close(sub);
  return rc;
}

void BM_CudaRoundTrip(benchmark::State& state) {
  if (!g_skip.empty()) return state.SkipWithError(("SKIP: " + g_skip).c_str());
  if (!cuframes_cuda_kind_built()) {
    return state.SkipWithError("SKIP: libcuframes was built without the CUDA_IPC kind");
  }
  const auto touch = static_cast<size_t>(state.range(0));
  SharedPage page;
  if (!page.ok()) return state.SkipWithError("shared page");
  auto* c = page.as<Control>();
  const std::string key = UniqueKey("bench-cuda");
  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = key.c_str();
  o.memory_kind = CUFRAMES_KIND_CUDA_IPC;
  o.width = 3840;
  o.height = 2160;
  o.pixel_format = CUFRAMES_PIXEL_NV12;
  o.slot_bytes = kFrameBytes;
  o.slot_count = 2;
  o.max_subscribers = 1;
  o.cuda_device = 0;
  cuframes_publisher* pub = nullptr;
  int s = cuframes_pub_create(&o, &pub);
  if (s != CUFRAMES_OK) {
    return state.SkipWithError(
        (std::string("pub_create(CUDA_IPC): ") + cuframes_status_name(s)).c_str());
  }
  std::string error;
  const pid_t pid =
      SpawnSelf({kChildFlag, "cuframes", key, std::to_string(page.fd()), std::to_string(touch)});
  if (pid < 0) error = "posix_spawn";
  if (error.empty() && (s = cuframes_pub_wait_subscribers(pub, 1, kStartMs)) != CUFRAMES_OK) {
    error = std::string("wait_subscribers: ") + cuframes_status_name(s);
  }
  cudaError_t e = cudaSuccess;
  auto publish = [&](uint32_t flags) -> bool {
    cuframes_slot slot;
    if ((s = cuframes_pub_acquire(pub, kWaitMs, &slot)) != CUFRAMES_OK) {
      error = std::string("acquire: ") + cuframes_status_name(s);
      return false;
    }
    auto stream = static_cast<cudaStream_t>(slot.cuda_stream);
    // The stream waits on the subscriber's ACK event (recorded after its CheckStamp of the
    // previous frame); the host observes it here, closing the round trip.
    e = cudaStreamSynchronize(stream);
    if (e == cudaSuccess && flags == 0) e = LaunchWriteStamp(slot.data, slot.seq, touch, stream);
    if (e != cudaSuccess) {
      error = CudaError("sync/write", e);
      return false;
    }
    cuframes_frame_info fi{};
    fi.width = 3840;
    fi.height = 2160;
    fi.pixel_format = CUFRAMES_PIXEL_NV12;
    fi.pitch = 3840;
    fi.payload_bytes = flags == 0 ? kFrameBytes : 0;
    fi.flags = flags;
    if ((s = cuframes_pub_commit(pub, &fi)) != CUFRAMES_OK) {
      error = std::string("commit: ") + cuframes_status_name(s);
      return false;
    }
    return true;
  };
  for (int i = 0; error.empty() && i < kWarmup; ++i)
    publish(0);
  std::vector<double> lat;
  lat.reserve(ReserveFor(state));
  for (auto _ : state) {
    if (!error.empty()) break;
    const auto t0 = Clock::now();
    publish(0);
    lat.push_back(static_cast<double>((Clock::now() - t0).count()));
  }
  // End of stream: the subscriber finishes its kernels and releases everything before the
  // publisher frees the buffers.
  if (error.empty() && publish(CUFRAMES_FRAME_END_OF_STREAM) &&
      WaitAtLeast(&c->pong, 1, kWaitMs) != 1) {
    error = "subscriber did not finish";
  }
  cuframes_pub_destroy(pub);
  if (pid > 0) {
    const int status = WaitChild(pid, kStartMs);
    if (error.empty() && !ExitedOk(status)) error = "subscriber process failed (see stderr)";
  }
  if (!error.empty()) return state.SkipWithError(error.c_str());
  SetLatencyCounters(state, lat);
  state.SetLabel("floor=BM_Floor_CudaRoundTrip/" + std::to_string(touch) +
                 " metric=real_time target=x<=1.1");
}

// A fixed iteration count: each run of a benchmark function starts a child process and CUDA in
// it, so the usual iteration-count search would pay that several times per repetition.
constexpr int64_t kIterations = 3000;
BENCHMARK(BM_Floor_CudaRoundTrip)
    ->Arg(4096)
    ->Arg(static_cast<int64_t>(kFrameBytes))
    ->Iterations(kIterations)
    ->UseRealTime();
BENCHMARK(BM_CudaRoundTrip)
    ->Arg(4096)
    ->Arg(static_cast<int64_t>(kFrameBytes))
    ->Iterations(kIterations)
    ->UseRealTime();

int ChildMain(int argc, char** argv) {
  const std::string role = argc > 2 ? argv[2] : "";
  if (role == "raw" && argc == 5) {
    return RawChild(std::atoi(argv[3]), static_cast<size_t>(std::atoll(argv[4])));
  }
  if (role == "cuframes" && argc == 6) {
    return CuframesChild(argv[3], std::atoi(argv[4]), static_cast<size_t>(std::atoll(argv[5])));
  }
  std::fprintf(stderr, "bench_cuda_roundtrip: bad child arguments\n");
  return 64;
}

// Sets g_skip when this machine cannot run the benchmarks, and describes the device otherwise.
void Probe() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    g_skip = e != cudaSuccess ? CudaError("no usable CUDA device: cudaGetDeviceCount", e)
                              : std::string("no CUDA device");
    std::fprintf(stderr, "bench_cuda_roundtrip: SKIP: %s\n", g_skip.c_str());
    return;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    benchmark::AddCustomContext("cuda_device", prop.name);
  }
  int driver = 0;
  if (cudaDriverGetVersion(&driver) == cudaSuccess) {
    benchmark::AddCustomContext("cuda_driver", std::to_string(driver));
  }
  const char* mps = std::getenv("CUDA_MPS_PIPE_DIRECTORY");
  benchmark::AddCustomContext("mps_pipe_directory", mps != nullptr ? mps : "(unset)");
}

}  // namespace
}  // namespace cuframes::bench

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], cuframes::bench::kChildFlag) == 0) {
    return cuframes::bench::ChildMain(argc, argv);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  cuframes::bench::Probe();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
