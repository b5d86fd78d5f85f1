// cuframes_inject.cc: libcuframes_inject.so, the CUPTI callback library the conformance harness
// injects into an implementation's processes (CUDA_INJECTION64_PATH) to see the CUDA calls that
// leave nothing at the wire (PROTOCOL.md 1.6 RES-CUDA-01..04, 5.5 ACK-CUDA-01/02).
//
// The CUDA driver loads the library at cuInit and calls InitializeInjection, which subscribes to
// the runtime and driver API callbacks of the calls below and registers fork handlers. Every call
// of interest becomes one JSON line in $CUFRAMES_INJECT_LOG_DIR/cuda-<pid>.jsonl, written with a
// single write(2) on an O_APPEND descriptor, formatted without malloc, locks or stdio: a process
// killed with SIGKILL leaves every line written before the kill whole, and the fork child handler
// stays within async-signal-safe calls. The harness's parser and judges live in
// conformance/src/inject_log.*; the line format is documented there.
//
// Preloaded as well (LD_PRELOAD, same file), the library also interposes accept/accept4/close to
// log the Unix-socket connections a publisher accepts and closes, so that the order of its frees
// against those closes can be judged (RES-CUDA-03). Loaded only by the driver, those wrappers are
// never bound and cost nothing.
//
// A runtime API call (cudaFree) reaches the driver (cuMemFree_v2) inside it; the driver callback
// nested in a runtime one is dropped so each call is logged once, whichever API the
// implementation uses. Kernel parameters are scanned for pointers only where the driver says
// where they are (cuFuncGetParamInfo, CUDA 12.4+, on a driver-level launch); a launch logged with
// "scan":0 may touch any mapping.
#include <cupti.h>  // with the generated_*_meta.h parameter structs (CUDA 12+)
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

// ---- async-signal-safe line formatting ----

class Line {
 public:
  Line() = default;
  Line& Raw(const char* s) {
    while (*s != '\0' && n_ + 1 < sizeof buf_)
      buf_[n_++] = *s++;
    return *this;
  }
  Line& U(uint64_t v) {
    char tmp[24];
    size_t k = 0;
    do {
      tmp[k++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (k > 0 && n_ + 1 < sizeof buf_)
      buf_[n_++] = tmp[--k];
    return *this;
  }
  // ,"key":<unsigned>
  Line& Key(const char* k, uint64_t v) { return Raw(",\"").Raw(k).Raw("\":").U(v); }
  Line& Str(const char* k, const char* v) {
    return Raw(",\"").Raw(k).Raw("\":\"").Raw(v).Raw("\"");
  }
  Line& Hex(const char* k, const void* p, size_t len) {
    static const char kDigits[] = "0123456789abcdef";
    Raw(",\"").Raw(k).Raw("\":\"");
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < len && n_ + 3 < sizeof buf_; ++i) {
      buf_[n_++] = kDigits[b[i] >> 4];
      buf_[n_++] = kDigits[b[i] & 15];
    }
    return Raw("\"");
  }
  const char* data() const { return buf_; }
  size_t size() const { return n_; }
  size_t room() const { return sizeof buf_ - n_; }

 private:
  char buf_[2048];
  size_t n_ = 0;
};

std::atomic<int> g_fd{-1};
std::atomic<bool> g_atfork{false};
std::atomic<bool> g_subscribed{false};

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Returns the log descriptor, opening $CUFRAMES_INJECT_LOG_DIR/cuda-<pid>.jsonl on first use; -1
// when the variable is unset (the library then logs nothing). getenv before any fork: the child
// inherits the open descriptor and never needs it.
int LogFd() {
  int fd = g_fd.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  const char* dir = std::getenv("CUFRAMES_INJECT_LOG_DIR");
  if (dir == nullptr || *dir == '\0') return -1;
  Line path;
  path.Raw(dir).Raw("/cuda-").U(static_cast<uint64_t>(getpid())).Raw(".jsonl");
  if (path.room() < 2) return -1;
  char name[2048];
  std::memcpy(name, path.data(), path.size());
  name[path.size()] = '\0';
  fd = open(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  int expected = -1;
  if (!g_fd.compare_exchange_strong(expected, fd)) {
    close(fd);  // another thread opened it first
    return expected;
  }
  return fd;
}

// Starts a line: {"t":...,"pid":...,"tid":...,"ev":"<ev>"
Line Begin(const char* ev) {
  Line l;
  l.Raw("{\"t\":").U(NowNs());
  l.Key("pid", static_cast<uint64_t>(getpid()));
  l.Key("tid", static_cast<uint64_t>(syscall(SYS_gettid)));
  l.Str("ev", ev);
  return l;
}

// Ends the line and writes it with one write(2) (O_APPEND: lines of several threads or of a
// forked child never interleave).
void Emit(Line& l) {
  const int fd = LogFd();
  if (fd < 0) return;
  l.Raw("}\n");
  const char* p = l.data();
  size_t left = l.size();
  while (left > 0) {
    const ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    left -= static_cast<size_t>(w);
  }
}

uint64_t P(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}

// ---- fork (RES-CUDA-04) ----

void ForkPrepare() {
  Line l = Begin("fork");
  Emit(l);
}
void ForkChild() {
  // The child's pid differs; it writes to the parent's file through the inherited descriptor.
  Line l = Begin("fork_child");
  l.Key("ppid", static_cast<uint64_t>(getppid()));
  Emit(l);
}
void RegisterAtFork() {
  bool expected = false;
  if (g_atfork.compare_exchange_strong(expected, true)) {
    pthread_atfork(ForkPrepare, nullptr, ForkChild);
  }
}

// ---- kernel parameter scan ----

using FuncGetParamInfo = CUresult (*)(CUfunction, size_t, size_t*, size_t*);

FuncGetParamInfo ParamInfoFn() {
  static const FuncGetParamInfo fn = [] {
    void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    return h == nullptr ? nullptr
                        : reinterpret_cast<FuncGetParamInfo>(dlsym(h, "cuFuncGetParamInfo"));
  }();
  return fn;
}

// Appends ,"scan":1,"ptrs":[...] with every 8-byte-aligned word of the kernel's parameters (at
// most 64), or ,"scan":0 when the parameters cannot be located.
void ScanParams(Line& l, CUfunction f, void** params, void** extra) {
  const FuncGetParamInfo info = ParamInfoFn();
  if (f == nullptr || info == nullptr || (params == nullptr && extra == nullptr)) {
    l.Key("scan", 0);
    return;
  }
  uint64_t words[64];
  size_t nw = 0;
  if (params != nullptr) {
    for (size_t i = 0; i < 256 && nw < 64; ++i) {
      size_t off = 0, size = 0;
      if (info(f, i, &off, &size) != CUDA_SUCCESS) break;
      const auto* b = static_cast<const unsigned char*>(params[i]);
      for (size_t k = 0; k + 8 <= size && nw < 64; k += 8)
        std::memcpy(&words[nw++], b + k, 8);
    }
  } else {
    // extra = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, END}
    const unsigned char* buf = nullptr;
    size_t size = 0;
    for (size_t i = 0; i < 16 && extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
      if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
        buf = static_cast<unsigned char*>(extra[i + 1]);
      if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) size = *static_cast<size_t*>(extra[i + 1]);
    }
    if (buf == nullptr) {
      l.Key("scan", 0);
      return;
    }
    for (size_t k = 0; k + 8 <= size && nw < 64; k += 8)
      std::memcpy(&words[nw++], buf + k, 8);
  }
  l.Key("scan", 1).Raw(",\"ptrs\":[");
  for (size_t i = 0; i < nw; ++i) {
    if (i) l.Raw(",");
    l.U(words[i]);
  }
  l.Raw("]");
}

// ---- the callbacks ----

thread_local int t_runtime_depth = 0;       // runtime API calls in progress on this thread
thread_local bool t_launch_logged = false;  // a nested driver launch logged the runtime's one

int Rc(const CUpti_CallbackData* cb) {
  return cb->functionReturnValue == nullptr ? 0 : *static_cast<const int*>(cb->functionReturnValue);
}

void Finish(Line& l, const CUpti_CallbackData* cb) {
  l.Str("api", cb->functionName).Key("rc", static_cast<uint64_t>(Rc(cb)));
  Emit(l);
}

void Copy(const CUpti_CallbackData* cb, uint64_t dst, uint64_t src, uint64_t bytes,
          uint64_t stream) {
  Line l = Begin("copy");
  l.Key("dst", dst).Key("src", src).Key("bytes", bytes).Key("stream", stream);
  Finish(l, cb);
}

void Runtime(CUpti_CallbackId id, const CUpti_CallbackData* cb) {
  if (cb->callbackSite == CUPTI_API_ENTER) {
    ++t_runtime_depth;
    switch (id) {
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060:
      case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060:
        t_launch_logged = false;
        break;
      // Frees and destroys are logged before they happen: what counts for RES-CUDA-03 is when
      // the call started.
      case CUPTI_RUNTIME_TRACE_CBID_cudaFree_v3020: {
        Line l = Begin("free");
        l.Key("ptr", P(static_cast<const cudaFree_v3020_params*>(cb->functionParams)->devPtr));
        l.Str("api", cb->functionName);
        Emit(l);
        break;
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_v11020:
      case CUPTI_RUNTIME_TRACE_CBID_cudaFreeAsync_ptsz_v11020: {
        const auto* p = static_cast<const cudaFreeAsync_v11020_params*>(cb->functionParams);
        Line l = Begin("free");
        l.Key("ptr", P(p->devPtr)).Key("stream", P(p->hStream)).Str("api", cb->functionName);
        Emit(l);
        break;
      }
      case CUPTI_RUNTIME_TRACE_CBID_cudaEventDestroy_v3020: {
        Line l = Begin("event_destroy");
        l.Key("event",
              P(static_cast<const cudaEventDestroy_v3020_params*>(cb->functionParams)->event));
        l.Str("api", cb->functionName);
        Emit(l);
        break;
      }
      default:
        break;
    }
    return;
  }
  // The call that initialised the driver (and so this library) returns without having entered.
  if (t_runtime_depth > 0) --t_runtime_depth;
  switch (id) {
    case CUPTI_RUNTIME_TRACE_CBID_cudaIpcOpenMemHandle_v4010: {
      const auto* p = static_cast<const cudaIpcOpenMemHandle_v4010_params*>(cb->functionParams);
      Line l = Begin("ipc_open");
      l.Hex("handle", &p->handle, sizeof p->handle);
      l.Key("ptr", Rc(cb) == 0 && p->devPtr != nullptr ? P(*p->devPtr) : 0).Key("flags", p->flags);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaIpcCloseMemHandle_v4010: {
      Line l = Begin("ipc_close");
      l.Key("ptr",
            P(static_cast<const cudaIpcCloseMemHandle_v4010_params*>(cb->functionParams)->devPtr));
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaIpcGetMemHandle_v4010: {
      const auto* p = static_cast<const cudaIpcGetMemHandle_v4010_params*>(cb->functionParams);
      Line l = Begin("ipc_get_mem");
      l.Key("ptr", P(p->devPtr));
      if (Rc(cb) == 0 && p->handle != nullptr) l.Hex("handle", p->handle, sizeof *p->handle);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaMalloc_v3020: {
      const auto* p = static_cast<const cudaMalloc_v3020_params*>(cb->functionParams);
      Line l = Begin("alloc");
      l.Key("ptr", Rc(cb) == 0 && p->devPtr != nullptr ? P(*p->devPtr) : 0).Key("bytes", p->size);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventCreate_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventCreateWithFlags_v3020: {
      // Both structs start with cudaEvent_t* event; only the second has flags.
      const auto* p = static_cast<const cudaEventCreateWithFlags_v3020_params*>(cb->functionParams);
      Line l = Begin("event_create");
      l.Key("event", Rc(cb) == 0 && p->event != nullptr ? P(*p->event) : 0);
      l.Key("flags", id == CUPTI_RUNTIME_TRACE_CBID_cudaEventCreate_v3020 ? 0 : p->flags);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaIpcGetEventHandle_v4010: {
      const auto* p = static_cast<const cudaIpcGetEventHandle_v4010_params*>(cb->functionParams);
      Line l = Begin("ipc_get_event");
      l.Key("event", P(p->event));
      if (Rc(cb) == 0 && p->handle != nullptr) l.Hex("handle", p->handle, sizeof *p->handle);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaIpcOpenEventHandle_v4010: {
      const auto* p = static_cast<const cudaIpcOpenEventHandle_v4010_params*>(cb->functionParams);
      Line l = Begin("ipc_open_event");
      l.Hex("handle", &p->handle, sizeof p->handle);
      l.Key("event", Rc(cb) == 0 && p->event != nullptr ? P(*p->event) : 0);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventRecord_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventRecord_ptsz_v7000:
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventRecordWithFlags_v11010:
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventRecordWithFlags_ptsz_v11010: {
      const auto* p = static_cast<const cudaEventRecord_v3020_params*>(cb->functionParams);
      Line l = Begin("event_record");
      l.Key("event", P(p->event)).Key("stream", P(p->stream));
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaStreamWaitEvent_ptsz_v7000: {
      const auto* p = static_cast<const cudaStreamWaitEvent_v3020_params*>(cb->functionParams);
      Line l = Begin("stream_wait");
      l.Key("stream", P(p->stream)).Key("event", P(p->event));
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_ptsz_v7000:
    case CUPTI_RUNTIME_TRACE_CBID_cudaStreamQuery_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaStreamQuery_ptsz_v7000: {
      const bool sync = id == CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020 ||
                        id == CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_ptsz_v7000;
      Line l = Begin(sync ? "stream_sync" : "stream_query");
      l.Key("stream",
            P(static_cast<const cudaStreamSynchronize_v3020_params*>(cb->functionParams)->stream));
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventSynchronize_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaEventQuery_v3020: {
      const bool sync = id == CUPTI_RUNTIME_TRACE_CBID_cudaEventSynchronize_v3020;
      Line l = Begin(sync ? "event_sync" : "event_query");
      l.Key("event",
            P(static_cast<const cudaEventSynchronize_v3020_params*>(cb->functionParams)->event));
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020: {
      Line l = Begin("ctx_sync");
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_ptsz_v7000: {
      const auto* p = static_cast<const cudaMemcpyAsync_v3020_params*>(cb->functionParams);
      Copy(cb, P(p->dst), P(p->src), p->count, P(p->stream));
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy2DAsync_ptsz_v7000: {
      const auto* p = static_cast<const cudaMemcpy2DAsync_v3020_params*>(cb->functionParams);
      Copy(cb, P(p->dst), P(p->src), p->height * (p->dpitch > p->spitch ? p->dpitch : p->spitch),
           P(p->stream));
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020:
    case CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_ptsz_v7000: {
      const auto* p = static_cast<const cudaMemsetAsync_v3020_params*>(cb->functionParams);
      Copy(cb, P(p->devPtr), 0, p->count, P(p->stream));
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000:
    case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_ptsz_v7000: {
      if (t_launch_logged) break;  // the driver launch inside it was logged with its pointers
      const auto* p = static_cast<const cudaLaunchKernel_v7000_params*>(cb->functionParams);
      Line l = Begin("launch");
      l.Key("stream", P(p->stream)).Key("scan", 0);
      Finish(l, cb);
      break;
    }
    case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_v11060:
    case CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernelExC_ptsz_v11060: {
      if (t_launch_logged) break;
      const auto* p = static_cast<const cudaLaunchKernelExC_v11060_params*>(cb->functionParams);
      Line l = Begin("launch");
      l.Key("stream", p->config != nullptr ? P(p->config->stream) : 0).Key("scan", 0);
      Finish(l, cb);
      break;
    }
    default:
      break;
  }
}

void Launch(const CUpti_CallbackData* cb, CUstream stream, CUfunction f, void** params,
            void** extra) {
  Line l = Begin("launch");
  l.Key("stream", P(stream));
  ScanParams(l, f, params, extra);
  Finish(l, cb);
  t_launch_logged = true;
}

void Driver(CUpti_CallbackId id, const CUpti_CallbackData* cb) {
  const void* a = cb->functionParams;
  if (cb->callbackSite == CUPTI_API_ENTER) {
    if (t_runtime_depth > 0) return;
    switch (id) {
      case CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2: {
        Line l = Begin("free");
        l.Key("ptr", static_cast<const cuMemFree_v2_params*>(a)->dptr).Str("api", cb->functionName);
        Emit(l);
        break;
      }
      case CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync:
      case CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync_ptsz: {
        const auto* p = static_cast<const cuMemFreeAsync_params*>(a);
        Line l = Begin("free");
        l.Key("ptr", p->dptr).Key("stream", P(p->hStream)).Str("api", cb->functionName);
        Emit(l);
        break;
      }
      case CUPTI_DRIVER_TRACE_CBID_cuEventDestroy_v2: {
        Line l = Begin("event_destroy");
        l.Key("event", P(static_cast<const cuEventDestroy_v2_params*>(a)->hEvent));
        l.Str("api", cb->functionName);
        Emit(l);
        break;
      }
      default:
        break;
    }
    return;
  }
  // A launch nested in a runtime launch is the one place a driver record replaces the runtime's:
  // only the driver names the CUfunction whose parameters can be located.
  if (t_runtime_depth > 0) {
    if (id == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel ||
        id == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz) {
      const auto* p = static_cast<const cuLaunchKernel_params*>(a);
      Launch(cb, p->hStream, p->f, p->kernelParams, p->extra);
    } else if (id == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx ||
               id == CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz) {
      const auto* p = static_cast<const cuLaunchKernelEx_params*>(a);
      Launch(cb, p->config != nullptr ? p->config->hStream : nullptr, p->f, p->kernelParams,
             p->extra);
    }
    return;
  }
  switch (id) {
    case CUPTI_DRIVER_TRACE_CBID_cuIpcOpenMemHandle:
    case CUPTI_DRIVER_TRACE_CBID_cuIpcOpenMemHandle_v2: {
      const auto* p = static_cast<const cuIpcOpenMemHandle_v2_params*>(a);
      Line l = Begin("ipc_open");
      l.Hex("handle", &p->handle, sizeof p->handle);
      l.Key("ptr", Rc(cb) == 0 && p->pdptr != nullptr ? *p->pdptr : 0).Key("flags", p->Flags);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuIpcCloseMemHandle: {
      Line l = Begin("ipc_close");
      l.Key("ptr", static_cast<const cuIpcCloseMemHandle_params*>(a)->dptr);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuIpcGetMemHandle: {
      const auto* p = static_cast<const cuIpcGetMemHandle_params*>(a);
      Line l = Begin("ipc_get_mem");
      l.Key("ptr", p->dptr);
      if (Rc(cb) == 0 && p->pHandle != nullptr) l.Hex("handle", p->pHandle, sizeof *p->pHandle);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2: {
      const auto* p = static_cast<const cuMemAlloc_v2_params*>(a);
      Line l = Begin("alloc");
      l.Key("ptr", Rc(cb) == 0 && p->dptr != nullptr ? *p->dptr : 0).Key("bytes", p->bytesize);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuEventCreate: {
      const auto* p = static_cast<const cuEventCreate_params*>(a);
      Line l = Begin("event_create");
      l.Key("event", Rc(cb) == 0 && p->phEvent != nullptr ? P(*p->phEvent) : 0);
      l.Key("flags", p->Flags);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuIpcGetEventHandle: {
      const auto* p = static_cast<const cuIpcGetEventHandle_params*>(a);
      Line l = Begin("ipc_get_event");
      l.Key("event", P(p->event));
      if (Rc(cb) == 0 && p->pHandle != nullptr) l.Hex("handle", p->pHandle, sizeof *p->pHandle);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuIpcOpenEventHandle: {
      const auto* p = static_cast<const cuIpcOpenEventHandle_params*>(a);
      Line l = Begin("ipc_open_event");
      l.Hex("handle", &p->handle, sizeof p->handle);
      l.Key("event", Rc(cb) == 0 && p->phEvent != nullptr ? P(*p->phEvent) : 0);
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuEventRecord:
    case CUPTI_DRIVER_TRACE_CBID_cuEventRecord_ptsz:
    case CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags:
    case CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags_ptsz: {
      const auto* p = static_cast<const cuEventRecord_params*>(a);
      Line l = Begin("event_record");
      l.Key("event", P(p->hEvent)).Key("stream", P(p->hStream));
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent:
    case CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent_ptsz: {
      const auto* p = static_cast<const cuStreamWaitEvent_params*>(a);
      Line l = Begin("stream_wait");
      l.Key("stream", P(p->hStream)).Key("event", P(p->hEvent));
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize:
    case CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz:
    case CUPTI_DRIVER_TRACE_CBID_cuStreamQuery:
    case CUPTI_DRIVER_TRACE_CBID_cuStreamQuery_ptsz: {
      const bool sync = id == CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize ||
                        id == CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz;
      Line l = Begin(sync ? "stream_sync" : "stream_query");
      l.Key("stream", P(static_cast<const cuStreamSynchronize_params*>(a)->hStream));
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuEventSynchronize:
    case CUPTI_DRIVER_TRACE_CBID_cuEventQuery: {
      Line l =
          Begin(id == CUPTI_DRIVER_TRACE_CBID_cuEventSynchronize ? "event_sync" : "event_query");
      l.Key("event", P(static_cast<const cuEventSynchronize_params*>(a)->hEvent));
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize: {
      Line l = Begin("ctx_sync");
      Finish(l, cb);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync:
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync_ptsz:
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2:
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2_ptsz: {
      // cuMemcpyAsync_params and cuMemcpyDtoDAsync_v2_params: dst, src, bytes, stream.
      const auto* p = static_cast<const cuMemcpyAsync_params*>(a);
      Copy(cb, p->dst, p->src, p->ByteCount, P(p->hStream));
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2:
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2_ptsz: {
      const auto* p = static_cast<const cuMemcpyHtoDAsync_v2_params*>(a);
      Copy(cb, p->dstDevice, P(p->srcHost), p->ByteCount, P(p->hStream));
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2:
    case CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2_ptsz: {
      const auto* p = static_cast<const cuMemcpyDtoHAsync_v2_params*>(a);
      Copy(cb, P(p->dstHost), p->srcDevice, p->ByteCount, P(p->hStream));
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz: {
      const auto* p = static_cast<const cuLaunchKernel_params*>(a);
      Launch(cb, p->hStream, p->f, p->kernelParams, p->extra);
      break;
    }
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx:
    case CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz: {
      const auto* p = static_cast<const cuLaunchKernelEx_params*>(a);
      Launch(cb, p->config != nullptr ? p->config->hStream : nullptr, p->f, p->kernelParams,
             p->extra);
      break;
    }
    default:
      break;
  }
}

void CUPTIAPI Callback(void*, CUpti_CallbackDomain domain, CUpti_CallbackId id, const void* data) {
  const auto* cb = static_cast<const CUpti_CallbackData*>(data);
  if (domain == CUPTI_CB_DOMAIN_RUNTIME_API) Runtime(id, cb);
  if (domain == CUPTI_CB_DOMAIN_DRIVER_API) Driver(id, cb);
}

constexpr CUpti_CallbackId kDriverIds[] = {
    CUPTI_DRIVER_TRACE_CBID_cuIpcOpenMemHandle,
    CUPTI_DRIVER_TRACE_CBID_cuIpcOpenMemHandle_v2,
    CUPTI_DRIVER_TRACE_CBID_cuIpcCloseMemHandle,
    CUPTI_DRIVER_TRACE_CBID_cuIpcGetMemHandle,
    CUPTI_DRIVER_TRACE_CBID_cuIpcGetEventHandle,
    CUPTI_DRIVER_TRACE_CBID_cuIpcOpenEventHandle,
    CUPTI_DRIVER_TRACE_CBID_cuMemAlloc_v2,
    CUPTI_DRIVER_TRACE_CBID_cuMemFree_v2,
    CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync,
    CUPTI_DRIVER_TRACE_CBID_cuMemFreeAsync_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuEventCreate,
    CUPTI_DRIVER_TRACE_CBID_cuEventDestroy_v2,
    CUPTI_DRIVER_TRACE_CBID_cuEventRecord,
    CUPTI_DRIVER_TRACE_CBID_cuEventRecord_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags,
    CUPTI_DRIVER_TRACE_CBID_cuEventRecordWithFlags_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent,
    CUPTI_DRIVER_TRACE_CBID_cuStreamWaitEvent_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize,
    CUPTI_DRIVER_TRACE_CBID_cuStreamSynchronize_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuStreamQuery,
    CUPTI_DRIVER_TRACE_CBID_cuStreamQuery_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuEventSynchronize,
    CUPTI_DRIVER_TRACE_CBID_cuEventQuery,
    CUPTI_DRIVER_TRACE_CBID_cuCtxSynchronize,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyAsync_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoDAsync_v2_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyHtoDAsync_v2_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2,
    CUPTI_DRIVER_TRACE_CBID_cuMemcpyDtoHAsync_v2_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx,
    CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz,
};

// ---- socket interposition (effective only under LD_PRELOAD) ----

// Accepted Unix-socket descriptors below 4096, so that close() logs only those.
std::atomic<uint64_t> g_accepted[64];

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

void Accepted(int fd) {
  if (fd < 0 || fd >= 4096) return;
  int domain = 0;
  socklen_t len = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX) return;
  g_accepted[fd / 64].fetch_or(uint64_t{1} << (fd % 64));
  Line l = Begin("accept");
  l.Key("fd", static_cast<uint64_t>(fd));
  Emit(l);
}

}  // namespace

extern "C" {

// Called by the CUDA driver at cuInit when CUDA_INJECTION64_PATH names this library. Returns 1
// (success) even when CUPTI refuses: the implementation must run as without the library, and the
// log's init line says what happened.
__attribute__((visibility("default"))) int InitializeInjection(void) {
  if (LogFd() < 0) return 1;
  RegisterAtFork();
  bool expected = false;
  if (!g_subscribed.compare_exchange_strong(expected, true)) return 1;
  CUpti_SubscriberHandle sub = nullptr;
  const CUptiResult r = cuptiSubscribe(&sub, Callback, nullptr);
  // Each enabling on its own: a callback id this driver does not know must not cost the others.
  // The whole runtime domain, so that every runtime call counts in t_runtime_depth (otherwise
  // the driver calls inside one we do not log would be logged as the implementation's own).
  CUptiResult runtime = r, driver = r;
  uint64_t driver_failed = 0;
  if (r == CUPTI_SUCCESS) {
    runtime = cuptiEnableDomain(1, sub, CUPTI_CB_DOMAIN_RUNTIME_API);
    for (CUpti_CallbackId id : kDriverIds) {
      const CUptiResult e = cuptiEnableCallback(1, sub, CUPTI_CB_DOMAIN_DRIVER_API, id);
      if (e != CUPTI_SUCCESS) {
        driver = e;
        ++driver_failed;
      }
    }
  }
  Line l = Begin("init");
  l.Key("ppid", static_cast<uint64_t>(getppid())).Key("cupti", static_cast<uint64_t>(r));
  l.Key("runtime", static_cast<uint64_t>(runtime)).Key("driver", static_cast<uint64_t>(driver));
  l.Key("driver_ids_refused", driver_failed);
  l.Key("param_info", ParamInfoFn() != nullptr ? 1 : 0);
  Emit(l);
  return 1;
}

__attribute__((visibility("default"))) int accept(int fd, sockaddr* addr, socklen_t* len) {
  static const auto real = Next<int (*)(int, sockaddr*, socklen_t*)>("accept");
  const int r = real(fd, addr, len);
  Accepted(r);
  return r;
}

__attribute__((visibility("default"))) int accept4(int fd, sockaddr* addr, socklen_t* len,
                                                   int flags) {
  static const auto real = Next<int (*)(int, sockaddr*, socklen_t*, int)>("accept4");
  const int r = real(fd, addr, len, flags);
  Accepted(r);
  return r;
}

// Logged after the close returned: a line "conn_close" before a free means the connection was
// closed before the free started.
__attribute__((visibility("default"))) int close(int fd) {
  static const auto real = Next<int (*)(int)>("close");
  const bool tracked = fd >= 0 && fd < 4096 &&
                       (g_accepted[fd / 64].fetch_and(~(uint64_t{1} << (fd % 64))) &
                        (uint64_t{1} << (fd % 64))) != 0;
  const int r = real(fd);
  if (tracked) {
    Line l = Begin("conn_close");
    l.Key("fd", static_cast<uint64_t>(fd)).Key("rc", static_cast<uint64_t>(r == 0 ? 0 : 1));
    Emit(l);
  }
  return r;
}

}  // extern "C"
