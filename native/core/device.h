// Where a buffer lives and where a kernel variant runs. Host is the CPU's memory (every Storage
// kind today); Cuda is reserved for the CUDA backend (backends/cuda), which registers no kernel
// variants yet. Switches over Device list every case (no default:), so adding a device is a
// build error at every place that must learn it.
#pragma once
#include <cstdint>

namespace qvl {

enum class Device : uint8_t { Host = 0, Cuda = 1 };
constexpr int kDeviceCount = 2;

// "cpu" or "cuda": how info(), the parity harness and error messages name a device.
const char* device_name(Device d);
// Whether this process can run work on d (Host: always; Cuda: a usable device was found).
bool device_available(Device d);

}  // namespace qvl
