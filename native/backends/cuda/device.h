// Whether a CUDA device can be used, and why not. Always compiled: builds without the CUDA
// toolkit link unavailable.cpp, builds with it link device.cu.
#pragma once
#include <cstdint>
#include <string>

namespace qvl::cuda {

struct Status {
  bool compiled = false;   // built with the CUDA backend
  bool available = false;  // a usable device is present
  std::string device;      // name of device 0
  uint64_t memory_bytes = 0;
  int device_count = 0;
  int runtime_version = 0;
  int driver_version = 0;
  std::string reason;      // why not available
};

Status status();

}  // namespace qvl::cuda
