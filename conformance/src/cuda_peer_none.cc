// cuda_peer_none.cc: the device side of a harness built without a CUDA toolkit (see cuda_peer.h).
// It has no device to offer: every CUDA case reports UNSUPPORTED with the reason below (issue 12
// item 5: the CPU-only build keeps working).
#include "cuda_peer.h"

namespace cuframes::conform::cudapeer {

namespace {
constexpr const char* kReason =
    "this cuframes-conform was built without CUDA (no CUDA toolkit found at configure time); "
    "build on a machine with nvcc to run the CUDA_IPC and CUDA_VMM_FD cases";
}  // namespace

std::string Unavailable() {
  return kReason;
}

std::string VmmUnavailable() {
  return kReason;
}

uint64_t VmmMappedSize(uint64_t) {
  return 0;
}

std::unique_ptr<Importer> MakeImporter(std::string* error) {
  *error = kReason;
  return nullptr;
}

std::unique_ptr<Exporter> MakeExporter(uint32_t, uint64_t, std::string* error) {
  *error = kReason;
  return nullptr;
}

std::unique_ptr<Exporter> MakeVmmExporter(uint32_t, uint64_t, uint64_t, std::string* error) {
  *error = kReason;
  return nullptr;
}

}  // namespace cuframes::conform::cudapeer
