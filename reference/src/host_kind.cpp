// host_kind.cpp: the HOST memory kind: slot buffers in the segment's data area, synchronized by
// the shared counters alone. Also the CUDA factories' stubs when the CUDA kind is not built.
#include "memory_kind.h"

namespace cuframes {
namespace {

class HostPublisherMemory final : public PublisherMemory {
 public:
  Status Init(const Mapping& seg, const SegmentInfo& info) override {
    base_ = seg.data() + info.geometry.data_offset;
    stride_ = info.geometry.data_stride;
    return Status::kOk;  // mem_handle/ready_event stay zero for HOST
  }
  void* SlotBuffer(uint32_t slot) const override { return base_ + stride_ * slot; }
  void* Stream() const override { return nullptr; }
  Status OpenAckEvent(uint32_t, const uint8_t*) override { return Status::kOk; }
  void CloseAckEvent(uint32_t) override {}
  Status AckDone(uint32_t) override { return Status::kOk; }
  Status RecordReady(uint32_t) override { return Status::kOk; }

 private:
  uint8_t* base_ = nullptr;
  uint64_t stride_ = 0;
};

class HostSubscriberMemory final : public SubscriberMemory {
 public:
  Status Init(const Mapping& seg, const SegmentInfo& info, layout::SubscriberSlot*,
              std::span<const int>) override {
    base_ = seg.data() + info.geometry.data_offset;
    stride_ = info.geometry.data_stride;
    return Status::kOk;
  }
  const void* SlotBuffer(uint32_t slot) const override { return base_ + stride_ * slot; }
  void* Stream() const override { return nullptr; }
  bool AckEventWritten() const override { return false; }
  Status WaitReady(uint32_t) override { return Status::kOk; }
  Status RecordAck() override { return Status::kOk; }

 private:
  const uint8_t* base_ = nullptr;
  uint64_t stride_ = 0;
};

}  // namespace

std::unique_ptr<PublisherMemory> MakeHostPublisherMemory() {
  return std::make_unique<HostPublisherMemory>();
}
std::unique_ptr<SubscriberMemory> MakeHostSubscriberMemory() {
  return std::make_unique<HostSubscriberMemory>();
}

#ifndef CUFRAMES_WITH_CUDA
bool CudaKindBuilt() {
  return false;
}
bool CudaVmmUsable(int) {
  return false;
}
void CudaWarmUp(int) {}
std::unique_ptr<PublisherMemory> MakeCudaPublisherMemory(int, uint16_t) {
  return nullptr;
}
std::unique_ptr<SubscriberMemory> MakeCudaSubscriberMemory(int, uint16_t) {
  return nullptr;
}
#endif

}  // namespace cuframes
