// cuda_kind.cu: the CUDA memory kinds (spec sections 5, 7): interprocess ready events
// (publisher) and ack events (subscribers), with slot buffers that are either cudaMalloc'd and
// exported with cudaIpcGetMemHandle (CUDA_IPC) or cuMemCreate allocations passed as file
// descriptors (CUDA_VMM_FD, cuda_vmm.h). Compiled only when CUFRAMES_WITH_CUDA; linked against
// the static cudart.
#include <cuda_runtime.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_vmm.h"
#include "mem_order.h"
#include "memory_kind.h"

namespace cuframes {
namespace {

constexpr unsigned kEventFlags = cudaEventInterprocess | cudaEventDisableTiming;

using HandleBytes = std::array<uint8_t, layout::kIpcHandleSize>;
static_assert(sizeof(cudaIpcMemHandle_t) == layout::kIpcHandleSize);
static_assert(sizeof(cudaIpcEventHandle_t) == layout::kIpcHandleSize);

// RES-CUDA-01/02: one mapping per exported allocation per process. Two attachments of one
// process to the same publisher share it (CUDA maps a handle once per process), counting users;
// the last attachment to let go closes it, exactly once.
class ImportRegistry {
 public:
  static ImportRegistry& Instance() {
    static auto* registry = new ImportRegistry;  // never destroyed: attachments may outlive
    return *registry;                            // static destruction at exit
  }

  cudaError_t Open(int device, const HandleBytes& bytes, void** ptr) {
    std::lock_guard lock(mu_);
    auto it = open_.find({device, bytes});
    if (it != open_.end()) {
      ++it->second.users;
      *ptr = it->second.ptr;
      return cudaSuccess;
    }
    cudaIpcMemHandle_t h{};
    std::memcpy(&h, bytes.data(), sizeof(h));
    const cudaError_t e = cudaIpcOpenMemHandle(ptr, h, cudaIpcMemLazyEnablePeerAccess);
    if (e == cudaSuccess) open_[{device, bytes}] = Import{*ptr, 1};
    return e;
  }

  // The caller has synchronised every stream that read the mapping.
  void Close(int device, const HandleBytes& bytes) {
    std::lock_guard lock(mu_);
    auto it = open_.find({device, bytes});
    if (it == open_.end() || --it->second.users > 0) return;
    cudaIpcCloseMemHandle(it->second.ptr);
    open_.erase(it);
  }

 private:
  struct Import {
    void* ptr;
    unsigned users;
  };
  std::mutex mu_;
  std::map<std::pair<int, HandleBytes>, Import> open_;
};

// A CUDA_VMM_FD buffer call failed: the status says only CUDA, so name the call on stderr for
// whoever has to find out why on a GPU machine. Returns `s`.
Status VmmFailed(const std::string& what, Status s) {
  std::fprintf(stderr, "cuframes: CUDA_VMM_FD: %s\n", what.c_str());
  return s;
}

class CudaPublisherMemory final : public PublisherMemory {
 public:
  CudaPublisherMemory(int device, uint16_t kind)
      : device_(device), vmm_(kind == layout::kKindCudaVmmFd) {}
  ~CudaPublisherMemory() override {
    if (!initialized_) return;
    cudaSetDevice(device_);
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (auto& e : ack_events_) {
      if (e != nullptr) cudaEventDestroy(e);
    }
    for (auto e : ready_)
      cudaEventDestroy(e);
    // Legacy IPC: the driver keeps an allocation alive while an importer still has it open.
    // VMM: likewise while an importer holds a handle or mapping (KIND-08); vmm_buffers_ unmap,
    // release and close their descriptors as they go.
    if (!vmm_) {
      for (void* b : buffers_)
        cudaFree(b);
    }
    vmm_buffers_.clear();
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status Init(const Mapping& seg, const SegmentInfo& info) override {
    if (cudaSetDevice(device_) != cudaSuccess) return Status::kCuda;
    initialized_ = true;
    if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
      return Status::kCuda;
    }
    ack_events_.assign(info.max_subscribers, nullptr);
    for (uint32_t i = 0; i < info.slot_count; ++i) {
      layout::SlotDescriptor* d = seg.desc(i);
      if (vmm_) {  // KIND-04: the descriptor goes with HELLO_RESP; mem_handle stays zero
        auto b = std::make_unique<vmm::Buffer>();
        std::string what;
        const Status s = b->Create(device_, info.slot_bytes, &what);
        if (s != Status::kOk) return VmmFailed(what, s);
        buffers_.push_back(b->ptr());
        vmm_buffers_.push_back(std::move(b));
      } else {
        void* buf = nullptr;
        const cudaError_t err = cudaMalloc(&buf, info.slot_bytes);
        if (err != cudaSuccess) {
          return err == cudaErrorMemoryAllocation ? Status::kNoMemory : Status::kCuda;
        }
        buffers_.push_back(buf);
        cudaIpcMemHandle_t mh{};
        if (cudaIpcGetMemHandle(&mh, buf) != cudaSuccess) return Status::kCuda;
        mem::copy_to_shared(d->mem_handle, &mh, sizeof(mh));
      }
      cudaEvent_t ev = nullptr;
      if (cudaEventCreateWithFlags(&ev, kEventFlags) != cudaSuccess) return Status::kCuda;
      ready_.push_back(ev);
      cudaIpcEventHandle_t eh{};
      if (cudaIpcGetEventHandle(&eh, ev) != cudaSuccess) return Status::kCuda;
      mem::copy_to_shared(d->ready_event, &eh, sizeof(eh));
    }
    return Status::kOk;
  }

  void* SlotBuffer(uint32_t slot) const override { return buffers_[slot]; }
  void* Stream() const override { return stream_; }

  Status OpenAckEvent(uint32_t index, const uint8_t* handle) override {
    cudaIpcEventHandle_t eh{};
    std::memcpy(&eh, handle, sizeof(eh));
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= ack_events_.size()) return Status::kInvalidArgument;
    cudaSetDevice(device_);
    cudaEvent_t ev = nullptr;
    if (cudaIpcOpenEventHandle(&ev, eh) != cudaSuccess) return Status::kCuda;
    if (ack_events_[index] != nullptr) cudaEventDestroy(ack_events_[index]);
    ack_events_[index] = ev;
    return Status::kOk;
  }

  void CloseAckEvent(uint32_t index) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= ack_events_.size() || ack_events_[index] == nullptr) return;
    cudaSetDevice(device_);
    cudaEventDestroy(ack_events_[index]);
    ack_events_[index] = nullptr;
  }

  Status AckDone(uint32_t index) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= ack_events_.size() || ack_events_[index] == nullptr) return Status::kOk;
    switch (cudaEventQuery(ack_events_[index])) {
      case cudaSuccess:
        return Status::kOk;
      case cudaErrorNotReady:
        return Status::kAgain;
      default:
        return Status::kCuda;
    }
  }

  Status RecordReady(uint32_t slot) override {
    return cudaEventRecord(ready_[slot], stream_) == cudaSuccess ? Status::kOk : Status::kCuda;
  }

  std::vector<int> ExportedFds() const override {
    std::vector<int> fds;
    for (const auto& b : vmm_buffers_)
      fds.push_back(b->ExportedFd());
    return fds;
  }

 private:
  int device_;
  bool vmm_;
  bool initialized_ = false;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> buffers_;
  std::vector<std::unique_ptr<vmm::Buffer>> vmm_buffers_;  // CUDA_VMM_FD: owns buffers_
  std::vector<cudaEvent_t> ready_;
  std::mutex mu_;  // ack_events_: opened/closed by the service thread, waited on by acquire
  std::vector<cudaEvent_t> ack_events_;
};

class CudaSubscriberMemory final : public SubscriberMemory {
 public:
  CudaSubscriberMemory(int device, uint16_t kind)
      : device_(device), vmm_(kind == layout::kKindCudaVmmFd) {}
  ~CudaSubscriberMemory() override {
    if (!initialized_) return;
    cudaSetDevice(device_);
    // Close each import exactly once, after the last use on our stream (RES-CUDA-02; for
    // CUDA_VMM_FD unmap, address free and release, KIND-08).
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (auto& [bytes, ptr] : opened_)
      ImportRegistry::Instance().Close(device_, bytes);
    vmm_buffers_.clear();  // VMM imports are per attachment (KIND-06), released here
    for (auto e : ready_)
      cudaEventDestroy(e);
    if (ack_ != nullptr) cudaEventDestroy(ack_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status Init(const Mapping& seg, const SegmentInfo& info, layout::SubscriberSlot* own,
              std::span<const int> fds) override {
    // KIND-07: one descriptor per slot, checked before any CUDA call.
    if (vmm_ && fds.size() != info.slot_count) return Status::kProtocol;
    if (cudaSetDevice(device_) != cudaSuccess) return Status::kCuda;
    initialized_ = true;
    if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
      return Status::kCuda;
    }
    for (uint32_t i = 0; i < info.slot_count; ++i) {
      const layout::SlotDescriptor* d = seg.desc(i);
      if (vmm_) {  // KIND-06: import, reserve, map at offset 0, read-write access
        auto b = std::make_unique<vmm::Buffer>();
        std::string what;
        if (b->Import(device_, fds[i], info.slot_bytes, &what) != Status::kOk) {
          return VmmFailed("slot " + std::to_string(i) + ": " + what, Status::kCuda);
        }
        buffers_.push_back(b->ptr());
        vmm_buffers_.push_back(std::move(b));
        if (!OpenReady(d)) return Status::kCuda;
        continue;
      }
      HandleBytes mh{};
      mem::copy_from_shared(mh.data(), d->mem_handle, mh.size());
      auto it = opened_.find(mh);
      if (it == opened_.end()) {  // once per attachment here, once per process below
        void* ptr = nullptr;
        if (ImportRegistry::Instance().Open(device_, mh, &ptr) != cudaSuccess) {
          return Status::kCuda;
        }
        it = opened_.emplace(mh, ptr).first;
      }
      buffers_.push_back(it->second);
      if (!OpenReady(d)) return Status::kCuda;
    }
    if (cudaEventCreateWithFlags(&ack_, kEventFlags) != cudaSuccess) return Status::kCuda;
    cudaIpcEventHandle_t ah{};
    if (cudaIpcGetEventHandle(&ah, ack_) != cudaSuccess) return Status::kCuda;
    mem::copy_to_shared(own->ack_event, &ah, sizeof(ah));
    mem::store_release(&own->flags, layout::kSubscriberFlagAckEventPresent);
    return Status::kOk;
  }

  const void* SlotBuffer(uint32_t slot) const override { return buffers_[slot]; }
  void* Stream() const override { return stream_; }
  bool AckEventWritten() const override { return ack_ != nullptr; }

  Status WaitReady(uint32_t slot) override {
    return cudaStreamWaitEvent(stream_, ready_[slot], 0) == cudaSuccess ? Status::kOk
                                                                        : Status::kCuda;
  }
  Status RecordAck() override {
    return cudaEventRecord(ack_, stream_) == cudaSuccess ? Status::kOk : Status::kCuda;
  }

 private:
  // Opens a slot's ready event (both CUDA kinds). Returns false on a CUDA failure.
  bool OpenReady(const layout::SlotDescriptor* d) {
    cudaIpcEventHandle_t eh{};
    mem::copy_from_shared(&eh, d->ready_event, sizeof(eh));
    cudaEvent_t ev = nullptr;
    if (cudaIpcOpenEventHandle(&ev, eh) != cudaSuccess) return false;
    ready_.push_back(ev);
    return true;
  }

  int device_;
  bool vmm_;
  bool initialized_ = false;
  cudaStream_t stream_ = nullptr;
  std::map<HandleBytes, void*> opened_;
  std::vector<std::unique_ptr<vmm::Buffer>> vmm_buffers_;  // CUDA_VMM_FD imports
  std::vector<void*> buffers_;
  std::vector<cudaEvent_t> ready_;
  cudaEvent_t ack_ = nullptr;
};

}  // namespace

bool CudaKindBuilt() {
  return true;
}

bool CudaVmmUsable(int device) {
  return vmm::Supported(device);
}

void CudaWarmUp(int device) {
  if (cudaSetDevice(device) == cudaSuccess) cudaFree(nullptr);
}

std::unique_ptr<PublisherMemory> MakeCudaPublisherMemory(int device, uint16_t kind) {
  return std::make_unique<CudaPublisherMemory>(device, kind);
}
std::unique_ptr<SubscriberMemory> MakeCudaSubscriberMemory(int device, uint16_t kind) {
  return std::make_unique<CudaSubscriberMemory>(device, kind);
}

}  // namespace cuframes
