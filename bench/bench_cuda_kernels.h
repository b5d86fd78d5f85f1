// bench_cuda_kernels.h: launchers of bench_cuda_roundtrip's kernels (bench_cuda_kernels.cu).
// Each returns cudaGetLastError() after the launch.
#ifndef CUFRAMES_BENCH_BENCH_CUDA_KERNELS_H_
#define CUFRAMES_BENCH_BENCH_CUDA_KERNELS_H_

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace cuframes::bench {

// Enqueues on `stream` a kernel storing `seq` into every 8-byte word of buf[0, bytes).
cudaError_t LaunchWriteStamp(void* buf, uint64_t seq, size_t bytes, cudaStream_t stream);

// Enqueues on `stream` a kernel adding to *errors (device memory) the number of 8-byte words of
// buf[0, bytes) that are not `seq`.
cudaError_t LaunchCheckStamp(const void* buf, uint64_t seq, size_t bytes, unsigned* errors,
                             cudaStream_t stream);

}  // namespace cuframes::bench

#endif  // CUFRAMES_BENCH_BENCH_CUDA_KERNELS_H_
