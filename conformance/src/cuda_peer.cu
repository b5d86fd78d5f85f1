// cuda_peer.cu: the harness's device side for CUDA_IPC (see cuda_peer.h), on the CUDA runtime
// (static cudart). Frames are written and verified by kernels against the adapter contract's
// payload, byte i of frame n = (n * 31 + i * 7) mod 256, so an overwrite or an early read shows
// up as mismatching bytes on the device itself, with no copy to the host that could hide it.
#include <cuda.h>  // types and signatures only: the driver is reached through cudart
#include <cuda_runtime.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "cuda_peer.h"

namespace cuframes::conform::cudapeer {
namespace {

constexpr unsigned kEventFlags = cudaEventInterprocess | cudaEventDisableTiming;
constexpr size_t kMaxResults = 4096;
static_assert(sizeof(cudaIpcMemHandle_t) == 64 && sizeof(cudaIpcEventHandle_t) == 64);

std::string Err(const char* what, cudaError_t e) {
  cudaGetLastError();  // clear a non-sticky error so the next case starts clean
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

__device__ uint64_t GlobalNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// A deliberately slow consumer or producer: one thread that holds its stream for `ns`.
__global__ void SpinKernel(uint64_t ns) {
  const uint64_t t0 = GlobalNs();
  while (GlobalNs() - t0 < ns) {}
}

__device__ uint8_t FrameByteDev(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>((seq * 31 + i * 7) & 0xff);
}

__global__ void FillKernel(uint8_t* buf, uint64_t seq, uint64_t bytes) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < bytes;
       i += uint64_t{gridDim.x} * blockDim.x) {
    buf[i] = FrameByteDev(seq, i);
  }
}

struct DevCheck {
  unsigned long long mismatches;
  unsigned long long first_bad;
};

__global__ void ResetKernel(DevCheck* r) {
  r->mismatches = 0;
  r->first_bad = ~0ull;
}

__global__ void VerifyKernel(const uint8_t* buf, uint64_t seq, uint64_t bytes, DevCheck* r) {
  unsigned long long bad = 0, first = ~0ull;
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < bytes;
       i += uint64_t{gridDim.x} * blockDim.x) {
    if (buf[i] != FrameByteDev(seq, i)) {
      ++bad;
      if (i < first) first = i;
    }
  }
  if (bad != 0) {
    atomicAdd(&r->mismatches, bad);
    atomicMin(&r->first_bad, first);
  }
}

unsigned Blocks(uint64_t bytes) {
  const uint64_t b = (bytes + 255) / 256;
  return static_cast<unsigned>(b < 1 ? 1 : b > 1024 ? 1024 : b);
}

// cuMemGetAddressRange through cudart's entry-point query: linking libcuda would make the harness
// unable to start on a machine without a driver, where it must report UNSUPPORTED instead.
uint64_t RangeBytes(const void* ptr) {
  using Fn = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);
  static Fn fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &p, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      return static_cast<Fn>(nullptr);
    }
    return reinterpret_cast<Fn>(p);
  }();
  if (fn == nullptr) return 0;
  CUdeviceptr base = 0;
  size_t size = 0;
  if (fn(&base, &size, reinterpret_cast<CUdeviceptr>(ptr)) != CUDA_SUCCESS) return 0;
  return size - (reinterpret_cast<CUdeviceptr>(ptr) - base);
}

// The VMM driver calls (spec 7.1), resolved through cudart like RangeBytes above.
struct VmmDriver {
  decltype(&::cuMemGetAllocationGranularity) granularity = nullptr;
  decltype(&::cuMemCreate) create = nullptr;
  decltype(&::cuMemExportToShareableHandle) export_fd = nullptr;
  decltype(&::cuMemImportFromShareableHandle) import_fd = nullptr;
  decltype(&::cuMemAddressReserve) reserve = nullptr;
  decltype(&::cuMemAddressFree) address_free = nullptr;
  decltype(&::cuMemMap) map = nullptr;
  decltype(&::cuMemUnmap) unmap = nullptr;
  decltype(&::cuMemSetAccess) set_access = nullptr;
  decltype(&::cuMemRelease) release = nullptr;
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDeviceGetAttribute) attribute = nullptr;
  bool ok = false;
};

template <typename Fn>
bool Resolve(const char* name, Fn* out) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  if (cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
      q != cudaDriverEntryPointSuccess || p == nullptr) {
    cudaGetLastError();
    return false;
  }
  *out = reinterpret_cast<Fn>(p);
  return true;
}

const VmmDriver& Vmm() {
  static const VmmDriver d = [] {
    VmmDriver r;
    r.ok = Resolve("cuMemGetAllocationGranularity", &r.granularity) &&
           Resolve("cuMemCreate", &r.create) &&
           Resolve("cuMemExportToShareableHandle", &r.export_fd) &&
           Resolve("cuMemImportFromShareableHandle", &r.import_fd) &&
           Resolve("cuMemAddressReserve", &r.reserve) &&
           Resolve("cuMemAddressFree", &r.address_free) && Resolve("cuMemMap", &r.map) &&
           Resolve("cuMemUnmap", &r.unmap) && Resolve("cuMemSetAccess", &r.set_access) &&
           Resolve("cuMemRelease", &r.release) && Resolve("cuDeviceGet", &r.device_get) &&
           Resolve("cuDeviceGetAttribute", &r.attribute);
    return r;
  }();
  return d;
}

CUmemAllocationProp VmmProps() {
  CUmemAllocationProp p{};
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = 0;
  p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  return p;
}

std::string DrvErr(const char* what, CUresult r) {
  return std::string(what) + ": CUresult " + std::to_string(static_cast<int>(r));
}

// One VMM buffer mapped here: made by the scripted publisher or imported by the scripted
// subscriber. Unmapped, its range freed and its handle released once, at destruction.
struct VmmBuffer {
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr ptr = 0;
  size_t size = 0;
  bool have_handle = false, reserved = false, mapped = false;
  int fd = -1;  // exported descriptor (publisher side)
  VmmBuffer() = default;
  VmmBuffer(const VmmBuffer&) = delete;
  VmmBuffer& operator=(const VmmBuffer&) = delete;
  ~VmmBuffer() {
    const VmmDriver& d = Vmm();
    if (mapped) d.unmap(ptr, size);
    if (reserved) d.address_free(ptr, size);
    if (have_handle) d.release(handle);
    if (fd >= 0) close(fd);
  }
  // Reserves `size` bytes, maps the allocation at offset 0, grants device 0 read-write access.
  std::string Map() {
    const VmmDriver& d = Vmm();
    CUresult r = d.reserve(&ptr, size, 0, 0, 0);
    if (r != CUDA_SUCCESS) return DrvErr("cuMemAddressReserve", r);
    reserved = true;
    r = d.map(ptr, size, 0, handle, 0);
    if (r != CUDA_SUCCESS) return DrvErr("cuMemMap", r);
    mapped = true;
    CUmemAccessDesc a{};
    a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    a.location.id = 0;
    a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    r = d.set_access(ptr, size, &a, 1);
    return r == CUDA_SUCCESS ? "" : DrvErr("cuMemSetAccess", r);
  }
};

class CudaImporter final : public Importer {
 public:
  ~CudaImporter() override {
    // RES-CUDA-02 for our own side: close each import once, after the last use on our stream.
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (auto& [bytes, ptr] : opened_)
      cudaIpcCloseMemHandle(ptr);
    vmm_.clear();  // KIND-08 for our own side: unmap, free the range, release
    for (cudaEvent_t e : ready_)
      cudaEventDestroy(e);
    if (ack_ != nullptr) cudaEventDestroy(ack_);
    if (results_ != nullptr) cudaFree(results_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  std::string Init() {
    cudaError_t e = cudaSetDevice(0);
    if (e != cudaSuccess) return Err("cudaSetDevice(0)", e);
    e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (e != cudaSuccess) return Err("cudaStreamCreateWithFlags", e);
    e = cudaMalloc(&results_, sizeof(DevCheck) * kMaxResults);
    if (e != cudaSuccess) return Err("cudaMalloc(results)", e);
    return "";
  }

  std::string OpenSlot(const IpcHandle& mem, const IpcHandle& ready) override {
    auto it = opened_.find(mem);
    if (it == opened_.end()) {
      cudaIpcMemHandle_t h;
      std::memcpy(&h, mem.data(), sizeof(h));
      void* ptr = nullptr;
      const cudaError_t e = cudaIpcOpenMemHandle(&ptr, h, cudaIpcMemLazyEnablePeerAccess);
      if (e != cudaSuccess) return Err("cudaIpcOpenMemHandle(mem_handle)", e);
      it = opened_.emplace(mem, ptr).first;
    }
    cudaIpcEventHandle_t eh;
    std::memcpy(&eh, ready.data(), sizeof(eh));
    cudaEvent_t ev = nullptr;
    const cudaError_t e = cudaIpcOpenEventHandle(&ev, eh);
    if (e != cudaSuccess) return Err("cudaIpcOpenEventHandle(ready_event)", e);
    buffers_.push_back(static_cast<const uint8_t*>(it->second));
    ready_.push_back(ev);
    return "";
  }

  std::string ImportSlot(int fd, uint64_t slot_bytes, const IpcHandle& ready) override {
    const VmmDriver& d = Vmm();
    if (!d.ok) return "the driver lacks the VMM entry points";
    auto b = std::make_unique<VmmBuffer>();
    b->size = VmmMappedSize(slot_bytes);
    if (b->size == 0) return "cuMemGetAllocationGranularity failed";
    const CUresult r = d.import_fd(&b->handle, reinterpret_cast<void*>(static_cast<intptr_t>(fd)),
                                   CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    if (r != CUDA_SUCCESS) return DrvErr("cuMemImportFromShareableHandle", r);
    b->have_handle = true;
    std::string err = b->Map();
    if (!err.empty()) return err;
    cudaIpcEventHandle_t eh;
    std::memcpy(&eh, ready.data(), sizeof(eh));
    cudaEvent_t ev = nullptr;
    const cudaError_t e = cudaIpcOpenEventHandle(&ev, eh);
    if (e != cudaSuccess) return Err("cudaIpcOpenEventHandle(ready_event)", e);
    buffers_.push_back(reinterpret_cast<const uint8_t*>(b->ptr));
    ready_.push_back(ev);
    vmm_.push_back(std::move(b));
    return "";
  }

  uint64_t AllocationBytes(uint32_t slot) override {
    return slot < buffers_.size() ? RangeBytes(buffers_[slot]) : 0;
  }

  std::string CreateAckEvent(IpcHandle* out) override {
    cudaError_t e = cudaEventCreateWithFlags(&ack_, kEventFlags);
    if (e != cudaSuccess) return Err("cudaEventCreateWithFlags(ack)", e);
    cudaIpcEventHandle_t h;
    e = cudaIpcGetEventHandle(&h, ack_);
    if (e != cudaSuccess) return Err("cudaIpcGetEventHandle(ack)", e);
    std::memcpy(out->data(), &h, sizeof(h));
    return "";
  }

  std::string EnqueueVerify(uint32_t slot, uint64_t seq, uint64_t bytes, uint32_t spin_us,
                            bool wait_ready, bool record_ack, size_t index) override {
    if (slot >= buffers_.size() || index >= kMaxResults) return "slot or result index out of range";
    cudaError_t e;
    if (wait_ready) {
      e = cudaStreamWaitEvent(stream_, ready_[slot], 0);
      if (e != cudaSuccess) return Err("cudaStreamWaitEvent(ready_event)", e);
    }
    ResetKernel<<<1, 1, 0, stream_>>>(results_ + index);
    if (spin_us != 0) SpinKernel<<<1, 1, 0, stream_>>>(uint64_t{spin_us} * 1000);
    VerifyKernel<<<Blocks(bytes), 256, 0, stream_>>>(buffers_[slot], seq, bytes, results_ + index);
    e = cudaGetLastError();
    if (e != cudaSuccess) return Err("verify kernel launch", e);
    if (record_ack) {
      e = cudaEventRecord(ack_, stream_);
      if (e != cudaSuccess) return Err("cudaEventRecord(ack)", e);
    }
    return "";
  }

  std::string Collect(size_t count, std::vector<FrameCheck>* out) override {
    if (count > kMaxResults) return "too many results";
    std::vector<DevCheck> host(count);
    // On this stream only: a copy on the legacy default stream could wait for other work of
    // this process (another subscriber's deliberately stalled kernel, 5.7/cuda-device-stall-*).
    cudaError_t e = cudaSuccess;
    if (count != 0) {
      e = cudaMemcpyAsync(host.data(), results_, sizeof(DevCheck) * count, cudaMemcpyDeviceToHost,
                          stream_);
      if (e != cudaSuccess) return Err("cudaMemcpyAsync(results)", e);
    }
    e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) return Err("cudaStreamSynchronize", e);
    out->clear();
    for (const DevCheck& d : host)
      out->push_back({d.mismatches, d.first_bad});
    return "";
  }

  size_t opened() const override { return opened_.size() + vmm_.size(); }

 private:
  cudaStream_t stream_ = nullptr;
  DevCheck* results_ = nullptr;
  std::map<IpcHandle, void*> opened_;            // keyed by the 64 handle bytes (RES-CUDA-01)
  std::vector<std::unique_ptr<VmmBuffer>> vmm_;  // CUDA_VMM_FD imports
  std::vector<const uint8_t*> buffers_;
  std::vector<cudaEvent_t> ready_;
  cudaEvent_t ack_ = nullptr;
};

class CudaExporter final : public Exporter {
 public:
  ~CudaExporter() override {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (cudaEvent_t e : acks_)
      cudaEventDestroy(e);
    for (cudaEvent_t e : ready_)
      cudaEventDestroy(e);
    if (vmm_.empty()) {
      for (void* b : buffers_)
        cudaFree(b);
    }
    vmm_.clear();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // `vmm`: CUDA_VMM_FD buffers of `alloc_bytes` (0: the mapped size M) instead of cudaMalloc.
  std::string Init(uint32_t slots, uint64_t slot_bytes, bool vmm, uint64_t alloc_bytes) {
    cudaError_t e = cudaSetDevice(0);
    if (e != cudaSuccess) return Err("cudaSetDevice(0)", e);
    e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (e != cudaSuccess) return Err("cudaStreamCreateWithFlags", e);
    for (uint32_t i = 0; i < slots; ++i) {
      IpcHandle m{};
      if (vmm) {
        const std::string err = CreateVmm(slot_bytes, alloc_bytes);
        if (!err.empty()) return err;
        buffers_.push_back(reinterpret_cast<uint8_t*>(vmm_.back()->ptr));
        e = cudaMemset(buffers_.back(), 0, vmm_.back()->size);
        if (e != cudaSuccess) return Err("cudaMemset(slot)", e);
      } else {
        void* b = nullptr;
        e = cudaMalloc(&b, slot_bytes);
        if (e != cudaSuccess) return Err("cudaMalloc(slot)", e);
        buffers_.push_back(static_cast<uint8_t*>(b));
        e = cudaMemset(b, 0, slot_bytes);
        if (e != cudaSuccess) return Err("cudaMemset(slot)", e);
        cudaIpcMemHandle_t mh;
        e = cudaIpcGetMemHandle(&mh, b);
        if (e != cudaSuccess) return Err("cudaIpcGetMemHandle", e);
        std::memcpy(m.data(), &mh, sizeof(mh));
      }
      mem_.push_back(m);
      cudaEvent_t ev = nullptr;
      e = cudaEventCreateWithFlags(&ev, kEventFlags);
      if (e != cudaSuccess) return Err("cudaEventCreateWithFlags(ready)", e);
      ready_.push_back(ev);
      cudaIpcEventHandle_t eh;
      e = cudaIpcGetEventHandle(&eh, ev);
      if (e != cudaSuccess) return Err("cudaIpcGetEventHandle(ready)", e);
      IpcHandle r;
      std::memcpy(r.data(), &eh, sizeof(eh));
      ready_h_.push_back(r);
    }
    e = cudaDeviceSynchronize();
    return e == cudaSuccess ? "" : Err("cudaDeviceSynchronize", e);
  }

  IpcHandle MemHandle(uint32_t slot) const override { return mem_.at(slot); }
  IpcHandle ReadyHandle(uint32_t slot) const override { return ready_h_.at(slot); }

  std::string OpenAckEvent(const IpcHandle& h) override {
    cudaIpcEventHandle_t eh;
    std::memcpy(&eh, h.data(), sizeof(eh));
    cudaEvent_t ev = nullptr;
    const cudaError_t e = cudaIpcOpenEventHandle(&ev, eh);
    if (e != cudaSuccess) return Err("cudaIpcOpenEventHandle(ack_event)", e);
    acks_.push_back(ev);
    return "";
  }

  std::string WaitAck() override {
    // ACK-CUDA-03: from the host, bounded, never a stream wait on another process's event.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (cudaEvent_t ev : acks_) {
      for (;;) {
        const cudaError_t e = cudaEventQuery(ev);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady) return Err("cudaEventQuery(ack_event)", e);
        if (std::chrono::steady_clock::now() >= deadline) {
          return "the ack event did not complete within 5 s";
        }
        std::this_thread::yield();
      }
    }
    return "";
  }

  std::string WriteFrame(uint32_t slot, uint64_t seq, uint64_t bytes, uint32_t spin_us,
                         bool ready_before_write) override {
    if (slot >= buffers_.size()) return "slot out of range";
    cudaError_t e;
    if (ready_before_write) {
      e = cudaEventRecord(ready_[slot], stream_);
      if (e != cudaSuccess) return Err("cudaEventRecord(ready)", e);
    }
    if (spin_us != 0) SpinKernel<<<1, 1, 0, stream_>>>(uint64_t{spin_us} * 1000);
    FillKernel<<<Blocks(bytes), 256, 0, stream_>>>(buffers_[slot], seq, bytes);
    e = cudaGetLastError();
    if (e != cudaSuccess) return Err("fill kernel launch", e);
    if (!ready_before_write) {
      e = cudaEventRecord(ready_[slot], stream_);
      if (e != cudaSuccess) return Err("cudaEventRecord(ready)", e);
    }
    return "";
  }

  std::string Sync() override {
    const cudaError_t e = cudaStreamSynchronize(stream_);
    return e == cudaSuccess ? "" : Err("cudaStreamSynchronize", e);
  }

  std::vector<int> Fds() const override {
    std::vector<int> out;
    for (const auto& b : vmm_)
      out.push_back(b->fd);
    return out;
  }

 private:
  // KIND-04: cuMemCreate (pinned, device 0, POSIX fd handles) of `alloc_bytes` (0: M), mapped
  // here for writing, exported as a descriptor. A hostile allocation smaller than M is mapped
  // here only as far as it goes.
  std::string CreateVmm(uint64_t slot_bytes, uint64_t alloc_bytes) {
    const VmmDriver& d = Vmm();
    if (!d.ok) return "the driver lacks the VMM entry points";
    auto b = std::make_unique<VmmBuffer>();
    b->size = alloc_bytes != 0 ? alloc_bytes : VmmMappedSize(slot_bytes);
    if (b->size == 0) return "cuMemGetAllocationGranularity failed";
    const CUmemAllocationProp p = VmmProps();
    CUresult r = d.create(&b->handle, b->size, &p, 0);
    if (r != CUDA_SUCCESS) return DrvErr("cuMemCreate", r);
    b->have_handle = true;
    std::string err = b->Map();
    if (!err.empty()) return err;
    int fd = -1;
    r = d.export_fd(&fd, b->handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
    if (r != CUDA_SUCCESS) return DrvErr("cuMemExportToShareableHandle", r);
    b->fd = fd;
    vmm_.push_back(std::move(b));
    return "";
  }

  cudaStream_t stream_ = nullptr;
  std::vector<uint8_t*> buffers_;
  std::vector<cudaEvent_t> ready_;
  std::vector<IpcHandle> mem_, ready_h_;
  std::vector<cudaEvent_t> acks_;
  std::vector<std::unique_ptr<VmmBuffer>> vmm_;  // CUDA_VMM_FD: owns buffers_
};

}  // namespace

std::string Unavailable() {
  static const std::string reason = [] {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return "no usable CUDA device: " + Err("cudaGetDeviceCount", e);
    if (n == 0) return std::string("no usable CUDA device: cudaGetDeviceCount found none");
    e = cudaFree(nullptr);
    if (e != cudaSuccess) return "no usable CUDA device: " + Err("cudaFree(nullptr)", e);
    return std::string();
  }();
  return reason;
}

std::string VmmUnavailable() {
  const std::string why = Unavailable();
  if (!why.empty()) return why;
  const VmmDriver& d = Vmm();
  if (!d.ok) return "CUDA_VMM_FD: the driver lacks the virtual memory management entry points";
  CUdevice dev = 0;
  int v = 0;
  CUresult r = d.device_get(&dev, 0);
  if (r == CUDA_SUCCESS) {
    r = d.attribute(&v, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, dev);
  }
  if (r != CUDA_SUCCESS) return "CUDA_VMM_FD: " + DrvErr("cuDeviceGetAttribute", r);
  if (v == 0) return "CUDA_VMM_FD: device 0 cannot export POSIX file descriptor allocations";
  return "";
}

uint64_t VmmMappedSize(uint64_t bytes) {
  const VmmDriver& d = Vmm();
  if (!d.ok) return 0;
  const CUmemAllocationProp p = VmmProps();
  size_t g = 0;
  if (d.granularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || g == 0) return 0;
  return (bytes + g - 1) / g * g;
}

std::unique_ptr<Importer> MakeImporter(std::string* error) {
  auto imp = std::make_unique<CudaImporter>();
  *error = imp->Init();
  if (!error->empty()) return nullptr;
  return imp;
}

std::unique_ptr<Exporter> MakeExporter(uint32_t slots, uint64_t slot_bytes, std::string* error) {
  auto exp = std::make_unique<CudaExporter>();
  *error = exp->Init(slots, slot_bytes, false, 0);
  if (!error->empty()) return nullptr;
  return exp;
}

std::unique_ptr<Exporter> MakeVmmExporter(uint32_t slots, uint64_t slot_bytes, uint64_t alloc_bytes,
                                          std::string* error) {
  auto exp = std::make_unique<CudaExporter>();
  *error = exp->Init(slots, slot_bytes, true, alloc_bytes);
  if (!error->empty()) return nullptr;
  return exp;
}

}  // namespace cuframes::conform::cudapeer
