// cuda_vmm.h: the buffer half of the CUDA_VMM_FD memory kind (spec section 7.1): slot buffers
// made with cuMemCreate, exported as POSIX file descriptors (publisher) and imported, mapped and
// given device access from them (subscriber). Events, streams and the ACK protocol are those of
// CUDA_IPC and stay in cuda_kind.cu, which picks this file's buffers or legacy IPC buffers by kind.
//
// The driver API is reached through cudart's entry-point query rather than by linking libcuda, so
// a CUDA build still starts (and answers UNSUPPORTED) on a machine without a driver.
// Compiled only when CUFRAMES_WITH_CUDA.
#ifndef CUFRAMES_REFERENCE_SRC_CUDA_VMM_H_
#define CUFRAMES_REFERENCE_SRC_CUDA_VMM_H_

#include <cstdint>
#include <string>

#include "status.h"

namespace cuframes::vmm {

// True when the driver offers the VMM entry points and `device` can export and import
// allocations as POSIX file descriptors.
bool Supported(int device);

// Returns M of spec 7.1: `bytes` rounded up to the minimum allocation granularity G of a pinned
// allocation on `device` that requests POSIX file descriptor handles; 0 on a driver failure.
uint64_t MappedSize(int device, uint64_t bytes);

// One slot buffer mapped into this process: made here (publisher) or imported (subscriber).
// Not copyable; the destructor unmaps, frees the address range and releases the handle, each
// once (KIND-08), and closes the exported descriptor if any. The caller synchronizes every
// stream that used the buffer first.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  // Publisher (KIND-04): cuMemCreate of MappedSize(device, bytes) bytes, mapped read-write for
  // `device`, exported as a descriptor kept open for later subscribers (ExportedFd()).
  // Returns kOk, kNoMemory (the allocation failed for lack of memory), kCuda; *what names the
  // failing call.
  Status Create(int device, uint64_t bytes, std::string* what);

  // Subscriber (KIND-06): imports `fd` (which the caller still owns and closes), reserves
  // MappedSize(device, bytes) bytes of address space, maps the allocation there at offset 0 and
  // grants `device` read-write access. A descriptor that does not import, or an allocation
  // smaller than the mapping, fails. Returns kOk or kCuda (KIND-07); *what names the failing call.
  Status Import(int device, int fd, uint64_t bytes, std::string* what);

  void* ptr() const { return reinterpret_cast<void*>(static_cast<uintptr_t>(ptr_)); }
  uint64_t size() const { return size_; }
  int ExportedFd() const { return fd_; }

 private:
  Status MapHere(int device, std::string* what);

  unsigned long long handle_ = 0;  // CUmemGenericAllocationHandle
  unsigned long long ptr_ = 0;     // CUdeviceptr of the reserved range
  uint64_t size_ = 0;
  bool reserved_ = false;
  bool mapped_ = false;
  bool have_handle_ = false;
  int fd_ = -1;
};

}  // namespace cuframes::vmm

#endif  // CUFRAMES_REFERENCE_SRC_CUDA_VMM_H_
