// bench_cuda_kernels.cu: the two kernels of bench_cuda_roundtrip, behind plain C++ launchers so
// that the benchmark itself compiles with the host compiler.
//   WriteStamp: the publisher's "frame written" kernel: stores `seq` into the first `bytes` bytes.
//   CheckStamp: the subscriber's "frame read" kernel: counts words that are not `seq` in *errors
//               (a wrong count means the cross-process ordering failed).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "bench_cuda_kernels.h"

namespace {

constexpr unsigned kThreads = 256;

__global__ void WriteStamp(uint64_t* buf, uint64_t seq, size_t words) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += gridDim.x * blockDim.x)
    buf[i] = seq;
}

__global__ void CheckStamp(const uint64_t* buf, uint64_t seq, size_t words, unsigned* errors) {
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < words; i += gridDim.x * blockDim.x) {
    if (buf[i] != seq) atomicAdd(errors, 1u);
  }
}

unsigned Blocks(size_t words) {
  const size_t b = (words + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 1024 ? 1024 : b));
}

}  // namespace

namespace cuframes::bench {

cudaError_t LaunchWriteStamp(void* buf, uint64_t seq, size_t bytes, cudaStream_t stream) {
  const size_t words = bytes / sizeof(uint64_t);
  WriteStamp<<<Blocks(words), kThreads, 0, stream>>>(static_cast<uint64_t*>(buf), seq, words);
  return cudaGetLastError();
}

cudaError_t LaunchCheckStamp(const void* buf, uint64_t seq, size_t bytes, unsigned* errors,
                             cudaStream_t stream) {
  const size_t words = bytes / sizeof(uint64_t);
  CheckStamp<<<Blocks(words), kThreads, 0, stream>>>(static_cast<const uint64_t*>(buf), seq, words,
                                                     errors);
  return cudaGetLastError();
}

}  // namespace cuframes::bench
