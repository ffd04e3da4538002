#include "core/device.h"

#include "backends/cuda/device.h"

namespace qvl {

const char* device_name(Device d) {
  switch (d) {
    case Device::Host: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "?";
}

bool device_available(Device d) {
  switch (d) {
    case Device::Host: return true;
    case Device::Cuda: {
      static const bool available = cuda::status().available;
      return available;
    }
  }
  return false;
}

}  // namespace qvl
