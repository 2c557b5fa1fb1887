// Device discovery through the statically linked CUDA runtime. The module imports on a
// machine without a driver: the runtime loads libcuda lazily, and a missing driver comes
// back here as an error code, not as a failed import.
#include <cuda_runtime.h>

#include "cuda/cuda_api.h"

namespace jsma::cuda {

int runtime_version() {
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) return 0;
  return version;
}

int driver_version() {
  int version = 0;
  if (cudaDriverGetVersion(&version) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return version;
}

int device_count(std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why != nullptr) *why = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "no CUDA device found";
  return count;
}

}  // namespace jsma::cuda
