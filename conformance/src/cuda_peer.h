// cuda_peer.h: the harness's own device side for the CUDA_IPC memory kind (PROTOCOL.md 2.4,
// 5.2-5.5), used by the CUDA suite (suites/cuda.cc) to play a CUDA subscriber or publisher
// against an IUT.
//
// The interface carries no CUDA type, so the suites compile everywhere. cuda_peer.cu implements it
// on the CUDA runtime (static cudart, never the IUT); cuda_peer_none.cc, built when no CUDA
// toolkit is found, only says why there is no device side, and every CUDA case then reports
// UNSUPPORTED with that reason. Everything here is the spec's view of CUDA_IPC: 64-byte
// cudaIpcMemHandle_t / cudaIpcEventHandle_t values, events created with
// cudaEventInterprocess | cudaEventDisableTiming, one stream per role. For CUDA_VMM_FD (spec 7.1)
// the buffers are cuMemCreate allocations exported and imported as POSIX file descriptors, which
// the suites pass on the socket; the events are the same.
#ifndef CUFRAMES_CONFORMANCE_SRC_CUDA_PEER_H_
#define CUFRAMES_CONFORMANCE_SRC_CUDA_PEER_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cuframes::conform::cudapeer {

using IpcHandle = std::array<uint8_t, 64>;

// Returns "" when the harness was built with CUDA and device 0 initialises; otherwise the reason
// (no toolkit at build time, no driver, no device), printed as the UNSUPPORTED reason.
std::string Unavailable();

// Returns "" when Unavailable() is "" and device 0 can export and import allocations as POSIX
// file descriptors (CUDA_VMM_FD); otherwise the reason.
std::string VmmUnavailable();
// M of spec 7.1: `bytes` rounded up to the minimum allocation granularity of a pinned device 0
// allocation requesting POSIX file descriptor handles; 0 when it cannot be queried.
uint64_t VmmMappedSize(uint64_t bytes);

// What the device-side check of one frame found.
struct FrameCheck {
  uint64_t mismatches = 0;  // bytes that differ from the contract payload (ADAPTER.md section 4)
  uint64_t first_bad = 0;   // index of the first differing byte (meaningful if mismatches != 0)
};

// The subscriber side: imports a publisher's slot buffers and ready events, verifies frames on the
// device and records its ack event on its one reading stream (ACK-CUDA-01).
class Importer {
 public:
  virtual ~Importer() = default;
  // Opens one slot's allocation (cudaIpcOpenMemHandle, once per distinct handle, RES-CUDA-01) and
  // ready event. Returns "" or the CUDA error.
  virtual std::string OpenSlot(const IpcHandle& mem, const IpcHandle& ready) = 0;
  // CUDA_VMM_FD (KIND-06): imports descriptor `fd` (the caller still closes it), reserves and maps
  // VmmMappedSize(slot_bytes) bytes at offset 0 with read-write access, and opens the slot's ready
  // event. Returns "" or the failing call and its error.
  virtual std::string ImportSlot(int fd, uint64_t slot_bytes, const IpcHandle& ready) = 0;
  // Size of the allocation behind slot `slot`'s mapping (cuMemGetAddressRange), 0 if unknown.
  virtual uint64_t AllocationBytes(uint32_t slot) = 0;
  // Creates the ack event (interprocess, timing disabled) and returns its handle.
  virtual std::string CreateAckEvent(IpcHandle* out) = 0;
  // Enqueues, on the reading stream: a wait on the slot's ready event (when `wait_ready`), a
  // kernel spinning `spin_us` microseconds (a slow consumer), a kernel comparing the first `bytes`
  // bytes of the slot with frame `seq` into result `index`, then the ack event's record (when
  // `record_ack`). Returns "" or the CUDA error.
  virtual std::string EnqueueVerify(uint32_t slot, uint64_t seq, uint64_t bytes, uint32_t spin_us,
                                    bool wait_ready, bool record_ack, size_t index) = 0;
  // Waits for the stream and returns results 0..count-1. Returns "" or the CUDA error.
  virtual std::string Collect(size_t count, std::vector<FrameCheck>* out) = 0;
  // Distinct allocations opened so far.
  virtual size_t opened() const = 0;
};
// Returns an importer on device 0, or nullptr with *error set.
std::unique_ptr<Importer> MakeImporter(std::string* error);

// The publisher side: one cudaMalloc per slot exported with cudaIpcGetMemHandle, one ready event
// per slot, the subscribers' ack events opened at ATTACH_REQ (ACK-CUDA-02).
class Exporter {
 public:
  virtual ~Exporter() = default;
  virtual IpcHandle MemHandle(uint32_t slot) const = 0;
  virtual IpcHandle ReadyHandle(uint32_t slot) const = 0;
  // Opens a subscriber's ack event (cudaIpcOpenEventHandle). Returns "" or the CUDA error.
  virtual std::string OpenAckEvent(const IpcHandle& h) = 0;
  // ACK-REUSE-02, ACK-CUDA-03: waits from the host (cudaEventQuery, at most 5 s) until every
  // opened ack event has completed.
  virtual std::string WaitAck() = 0;
  // Writes frame `seq` (`bytes` bytes) into `slot` on the writing stream: a kernel spinning
  // `spin_us` microseconds (a slow writer), then a kernel writing the contract payload. The ready
  // event is recorded after the write (ACK-COMMIT-01), or before it when `ready_before_write` (a
  // publisher breaking ACK-COMMIT-01, the negative control of the ready-event case).
  virtual std::string WriteFrame(uint32_t slot, uint64_t seq, uint64_t bytes, uint32_t spin_us,
                                 bool ready_before_write) = 0;
  // Waits for the writing stream. Returns "" or the CUDA error.
  virtual std::string Sync() = 0;
  // CUDA_VMM_FD: the exported descriptors, slot order (owned by the exporter); else empty.
  virtual std::vector<int> Fds() const = 0;
};
// Returns an exporter of `slots` buffers of `slot_bytes` on device 0, or nullptr with *error.
std::unique_ptr<Exporter> MakeExporter(uint32_t slots, uint64_t slot_bytes, std::string* error);
// The same for CUDA_VMM_FD: cuMemCreate allocations of `alloc_bytes` (0: VmmMappedSize(slot_bytes),
// KIND-04; a hostile publisher gives less), mapped here and exported as descriptors. mem_handle
// is all zero (SHM-SLOT-02).
std::unique_ptr<Exporter> MakeVmmExporter(uint32_t slots, uint64_t slot_bytes, uint64_t alloc_bytes,
                                          std::string* error);

}  // namespace cuframes::conform::cudapeer

#endif  // CUFRAMES_CONFORMANCE_SRC_CUDA_PEER_H_
