// memory_kind.h: where slot buffers live and how readiness and ACKs are ordered with the device
// (spec section 5), behind one interface per side.
//
// HOST (1): buffers are in the segment's data area; the counters in shared memory (release/
// acquire) are the only synchronization, so every hook is a no-op.
// CUDA_IPC (2): the publisher cudaMallocs each slot and exports it with cudaIpcGetMemHandle, plus
// one interprocess "ready" event per slot; each subscriber exports one interprocess "ack" event.
// Commit records ready[s] on the publisher stream; a subscriber's stream waits on it; release
// records the ack event; before it hands a slot out again the publisher waits, from the host and
// bounded by the ACK timeout, until every relevant ack event has completed (ACK-CUDA-03). Compiled
// only when CUFRAMES_WITH_CUDA. CUDA_VMM_FD (3, optional, spec 7.1): as CUDA_IPC, except that each
// slot buffer is a cuMemCreate allocation whose POSIX file descriptor travels with HELLO_RESP
// (SCM_RIGHTS) instead of a mem_handle in the segment (cuda_vmm.h); the same classes serve both
// CUDA kinds.
#ifndef CUFRAMES_REFERENCE_SRC_MEMORY_KIND_H_
#define CUFRAMES_REFERENCE_SRC_MEMORY_KIND_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "layout.h"
#include "segment.h"
#include "status.h"

namespace cuframes {

class PublisherMemory {
 public:
  virtual ~PublisherMemory() = default;
  // Allocates every slot buffer (and ready event), writing mem_handle/ready_event of each
  // descriptor in `seg`. Returns kOk, kCuda, kNoMemory.
  virtual Status Init(const Mapping& seg, const SegmentInfo& info) = 0;
  // Returns the buffer of slot `slot` (host pointer into the mapping, or device pointer).
  virtual void* SlotBuffer(uint32_t slot) const = 0;
  // Returns the publisher's cudaStream_t (null for HOST).
  virtual void* Stream() const = 0;
  // Opens subscriber `index`'s ack event from the handle bytes it wrote. Returns kOk, kCuda.
  virtual Status OpenAckEvent(uint32_t index, const uint8_t* handle) = 0;
  // Closes subscriber `index`'s ack event, if open. Thread-safe against WaitAck().
  virtual void CloseAckEvent(uint32_t index) = 0;
  // Whether subscriber `index`'s most recent ack event recording has completed (a host-side
  // query, never a stream wait: ACK-CUDA-03 bounds the device side by the ACK timeout, and a
  // stream wait cannot be bounded). Returns kOk when it has or when no event is open (HOST),
  // kAgain while the recorded work still runs, kCuda when the query fails (the publisher treats
  // that as not complete).
  virtual Status AckDone(uint32_t index) = 0;
  // Records slot `slot`'s ready event on the publisher stream. Returns kOk, kCuda.
  virtual Status RecordReady(uint32_t slot) = 0;
  // CUDA_VMM_FD: the slot buffers' exported descriptors, in slot order, sent with every
  // HELLO_RESP(OK) (KIND-04) and owned by this object; empty for the other kinds.
  virtual std::vector<int> ExportedFds() const { return {}; }
};

class SubscriberMemory {
 public:
  virtual ~SubscriberMemory() = default;
  // Opens every slot buffer and ready event of `seg` (each distinct handle once), creates the
  // subscriber's ack event and writes its handle and flags bit0 into `own`. `fds` are the
  // descriptors that came with HELLO_RESP: for CUDA_VMM_FD one per slot, imported here (the
  // caller keeps ownership and closes them all afterwards); ignored by the other kinds.
  // Returns kOk, kProtocol (CUDA_VMM_FD: not one descriptor per slot), kCuda, kNoMemory.
  virtual Status Init(const Mapping& seg, const SegmentInfo& info, layout::SubscriberSlot* own,
                      std::span<const int> fds) = 0;
  virtual const void* SlotBuffer(uint32_t slot) const = 0;
  virtual void* Stream() const = 0;
  // True if Init() wrote an ack event handle (ATTACH_REQ flags bit0).
  virtual bool AckEventWritten() const = 0;
  // Makes the subscriber stream wait for slot `slot`'s ready event. Returns kOk, kCuda.
  virtual Status WaitReady(uint32_t slot) = 0;
  // Records the ack event on the subscriber stream. Returns kOk, kCuda.
  virtual Status RecordAck() = 0;
};

std::unique_ptr<PublisherMemory> MakeHostPublisherMemory();
std::unique_ptr<SubscriberMemory> MakeHostSubscriberMemory();

// True when this build has the CUDA kinds.
bool CudaKindBuilt();
// True when this build has the CUDA kinds and `device` can export and import allocations as POSIX
// file descriptors (CUDA_VMM_FD); false without a driver or device.
bool CudaVmmUsable(int device);
// Creates this process's context on `device` now, so that a CUDA-only subscriber's handshake,
// which the publisher bounds by HANDSHAKE_TIMEOUT_MS, does not include the driver's context
// creation (seconds when dozens of processes start at once). Failures are left to the handshake,
// which reports them as CUDA. A no-op when the CUDA kinds are not built.
void CudaWarmUp(int device);
// `kind` is CUDA_IPC or CUDA_VMM_FD. Return null when the CUDA kinds are not built.
std::unique_ptr<PublisherMemory> MakeCudaPublisherMemory(int device, uint16_t kind);
std::unique_ptr<SubscriberMemory> MakeCudaSubscriberMemory(int device, uint16_t kind);

}  // namespace cuframes

#endif  // CUFRAMES_REFERENCE_SRC_MEMORY_KIND_H_
