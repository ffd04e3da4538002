#include "backends/cuda/device.h"

namespace qvl::cuda {

Status status() {
  Status s;
  s.reason = "built without CUDA (nvcc was not found at build time, or QWENVL_CUDA=OFF)";
  return s;
}

}  // namespace qvl::cuda
