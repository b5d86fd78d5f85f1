// cuda_vmm.cu: CUDA_VMM_FD slot buffers (see cuda_vmm.h): cuMemCreate + export as a POSIX file
// descriptor on the publisher side, import + reserve + map + set access on the subscriber side,
// and the reverse at the end. Driver entry points come from cudart (no libcuda link).
#include <cuda.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <cstdint>

#include "cuda_vmm.h"

namespace cuframes::vmm {
namespace {

// The driver calls this kind needs, resolved once. decltype keeps the signatures those of cuda.h.
struct Driver {
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

const Driver& Drv() {
  static const Driver d = [] {
    Driver r;
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

// The allocation properties of spec 7.1: pinned memory on `device`, exportable as a descriptor.
CUmemAllocationProp Props(int device) {
  CUmemAllocationProp p{};
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = device;
  p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  return p;
}

std::string Failed(const char* call, CUresult r) {
  return std::string(call) + " failed: CUresult " + std::to_string(static_cast<int>(r));
}

}  // namespace

bool Supported(int device) {
  const Driver& d = Drv();
  // The runtime has no attribute for it; the driver's needs an initialised driver, which the
  // runtime call below brings up.
  if (!d.ok || cudaFree(nullptr) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  CUdevice dev = 0;
  int v = 0;
  return d.device_get(&dev, device) == CUDA_SUCCESS &&
         d.attribute(&v, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, dev) ==
             CUDA_SUCCESS &&
         v != 0;
}

uint64_t MappedSize(int device, uint64_t bytes) {
  const Driver& d = Drv();
  if (!d.ok) return 0;
  const CUmemAllocationProp p = Props(device);
  size_t g = 0;
  if (d.granularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || g == 0) return 0;
  return (bytes + g - 1) / g * g;
}

Buffer::~Buffer() {
  const Driver& d = Drv();
  if (mapped_) d.unmap(ptr_, size_);
  if (reserved_) d.address_free(ptr_, size_);
  if (have_handle_) d.release(handle_);
  if (fd_ >= 0) ::close(fd_);
}

Status Buffer::MapHere(int device, std::string* what) {
  const Driver& d = Drv();
  CUdeviceptr p = 0;
  CUresult r = d.reserve(&p, size_, 0, 0, 0);
  if (r != CUDA_SUCCESS) {
    *what = Failed("cuMemAddressReserve", r);
    return Status::kCuda;
  }
  ptr_ = p;
  reserved_ = true;
  // Fails when the allocation is smaller than size_ (offset + size beyond it): KIND-07.
  r = d.map(ptr_, size_, 0, handle_, 0);
  if (r != CUDA_SUCCESS) {
    *what = Failed("cuMemMap", r);
    return Status::kCuda;
  }
  mapped_ = true;
  CUmemAccessDesc a{};
  a.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  a.location.id = device;
  a.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  r = d.set_access(ptr_, size_, &a, 1);
  if (r != CUDA_SUCCESS) {
    *what = Failed("cuMemSetAccess", r);
    return Status::kCuda;
  }
  return Status::kOk;
}

Status Buffer::Create(int device, uint64_t bytes, std::string* what) {
  const Driver& d = Drv();
  if (!d.ok) {
    *what = "the driver lacks the virtual memory management entry points";
    return Status::kCuda;
  }
  size_ = MappedSize(device, bytes);
  if (size_ == 0) {
    *what = "cuMemGetAllocationGranularity failed";
    return Status::kCuda;
  }
  const CUmemAllocationProp p = Props(device);
  CUmemGenericAllocationHandle h = 0;
  CUresult r = d.create(&h, size_, &p, 0);
  if (r != CUDA_SUCCESS) {
    *what = Failed("cuMemCreate", r);
    return r == CUDA_ERROR_OUT_OF_MEMORY ? Status::kNoMemory : Status::kCuda;
  }
  handle_ = h;
  have_handle_ = true;
  const Status s = MapHere(device, what);
  if (s != Status::kOk) return s;
  int fd = -1;
  r = d.export_fd(&fd, handle_, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
  if (r != CUDA_SUCCESS) {
    *what = Failed("cuMemExportToShareableHandle", r);
    return Status::kCuda;
  }
  fd_ = fd;
  return Status::kOk;
}

Status Buffer::Import(int device, int fd, uint64_t bytes, std::string* what) {
  const Driver& d = Drv();
  if (!d.ok) {
    *what = "the driver lacks the virtual memory management entry points";
    return Status::kCuda;
  }
  size_ = MappedSize(device, bytes);
  if (size_ == 0) {
    *what = "cuMemGetAllocationGranularity failed";
    return Status::kCuda;
  }
  CUmemGenericAllocationHandle h = 0;
  // The descriptor travels as the handle's value (cuda.h: "void *osHandle").
  const CUresult r = d.import_fd(&h, reinterpret_cast<void*>(static_cast<intptr_t>(fd)),
                                 CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
  if (r != CUDA_SUCCESS) {
    *what = Failed("cuMemImportFromShareableHandle", r);
    return Status::kCuda;
  }
  handle_ = h;
  have_handle_ = true;
  return MapHere(device, what);
}

}  // namespace cuframes::vmm
