// Device discovery. Static cudart loads libcuda lazily, so a machine with the toolkit but no
// driver or GPU reaches here with an error code (35: no driver, 100: no device), never a crash.
#include <cuda_runtime.h>

#include "backends/cuda/device.h"

namespace qvl::cuda {

Status status() {
  Status s;
  s.compiled = true;
  cudaRuntimeGetVersion(&s.runtime_version);
  cudaDriverGetVersion(&s.driver_version);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error
    return s;
  }
  s.device_count = count;
  if (count == 0) {
    s.reason = "no CUDA device found";
    return s;
  }
  cudaDeviceProp prop;
  const cudaError_t perr = cudaGetDeviceProperties(&prop, 0);
  if (perr != cudaSuccess) {
    s.reason = std::string(cudaGetErrorName(perr)) + ": " + cudaGetErrorString(perr);
    cudaGetLastError();
    return s;
  }
  s.available = true;
  s.device = prop.name;
  s.memory_bytes = prop.totalGlobalMem;
  return s;
}

}  // namespace qvl::cuda
