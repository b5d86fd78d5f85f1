// cuda_kind.cu: the CUDA_IPC memory kind (spec section 5): cudaMalloc'd slot buffers exported
// with cudaIpcGetMemHandle, interprocess ready events (publisher) and ack events (subscribers).
// Compiled only when CUFRAMES_WITH_CUDA; linked against the static cudart.
#include <cuda_runtime.h>

#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

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

class CudaPublisherMemory final : public PublisherMemory {
 public:
  explicit CudaPublisherMemory(int device) : device_(device) {}
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
    for (void* b : buffers_)
      cudaFree(b);
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
      void* buf = nullptr;
      const cudaError_t err = cudaMalloc(&buf, info.slot_bytes);
      if (err != cudaSuccess) {
        return err == cudaErrorMemoryAllocation ? Status::kNoMemory : Status::kCuda;
      }
      buffers_.push_back(buf);
      cudaIpcMemHandle_t mh{};
      if (cudaIpcGetMemHandle(&mh, buf) != cudaSuccess) return Status::kCuda;
      cudaEvent_t ev = nullptr;
      if (cudaEventCreateWithFlags(&ev, kEventFlags) != cudaSuccess) return Status::kCuda;
      ready_.push_back(ev);
      cudaIpcEventHandle_t eh{};
      if (cudaIpcGetEventHandle(&eh, ev) != cudaSuccess) return Status::kCuda;
      layout::SlotDescriptor* d = seg.desc(i);
      mem::copy_to_shared(d->mem_handle, &mh, sizeof(mh));
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

  Status WaitAck(uint32_t index) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= ack_events_.size() || ack_events_[index] == nullptr) return Status::kOk;
    return cudaStreamWaitEvent(stream_, ack_events_[index], 0) == cudaSuccess ? Status::kOk
                                                                              : Status::kCuda;
  }

  Status RecordReady(uint32_t slot) override {
    return cudaEventRecord(ready_[slot], stream_) == cudaSuccess ? Status::kOk : Status::kCuda;
  }

 private:
  int device_;
  bool initialized_ = false;
  cudaStream_t stream_ = nullptr;
  std::vector<void*> buffers_;
  std::vector<cudaEvent_t> ready_;
  std::mutex mu_;  // ack_events_: opened/closed by the service thread, waited on by acquire
  std::vector<cudaEvent_t> ack_events_;
};

class CudaSubscriberMemory final : public SubscriberMemory {
 public:
  explicit CudaSubscriberMemory(int device) : device_(device) {}
  ~CudaSubscriberMemory() override {
    if (!initialized_) return;
    cudaSetDevice(device_);
    // Close each import exactly once, after the last use on our stream.
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (auto& [bytes, ptr] : opened_)
      ImportRegistry::Instance().Close(device_, bytes);
    for (auto e : ready_)
      cudaEventDestroy(e);
    if (ack_ != nullptr) cudaEventDestroy(ack_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  Status Init(const Mapping& seg, const SegmentInfo& info, layout::SubscriberSlot* own) override {
    if (cudaSetDevice(device_) != cudaSuccess) return Status::kCuda;
    initialized_ = true;
    if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
      return Status::kCuda;
    }
    for (uint32_t i = 0; i < info.slot_count; ++i) {
      const layout::SlotDescriptor* d = seg.desc(i);
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
      cudaIpcEventHandle_t eh{};
      mem::copy_from_shared(&eh, d->ready_event, sizeof(eh));
      cudaEvent_t ev = nullptr;
      if (cudaIpcOpenEventHandle(&ev, eh) != cudaSuccess) return Status::kCuda;
      ready_.push_back(ev);
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
  int device_;
  bool initialized_ = false;
  cudaStream_t stream_ = nullptr;
  std::map<HandleBytes, void*> opened_;
  std::vector<void*> buffers_;
  std::vector<cudaEvent_t> ready_;
  cudaEvent_t ack_ = nullptr;
};

}  // namespace

bool CudaKindBuilt() {
  return true;
}

std::unique_ptr<PublisherMemory> MakeCudaPublisherMemory(int device) {
  return std::make_unique<CudaPublisherMemory>(device);
}
std::unique_ptr<SubscriberMemory> MakeCudaSubscriberMemory(int device) {
  return std::make_unique<CudaSubscriberMemory>(device);
}

}  // namespace cuframes
