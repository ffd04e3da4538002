#include "ops/registry.h"

#include <cstdlib>
#include <cstring>

namespace qvl::ops {

namespace {
Isa max_isa_from_env() {
  const char* v = std::getenv("QWENVL_MAX_ISA");
  if (!v || !*v) return Isa::Cuda;
  for (int i = 0; i <= static_cast<int>(Isa::Cuda); ++i) {
    if (std::strcmp(v, isa_name(static_cast<Isa>(i))) == 0) return static_cast<Isa>(i);
  }
  return Isa::Cuda;
}
}  // namespace

bool OpFamilyBase::allowed(Device d, Isa isa) {
  static const Isa cap = max_isa_from_env();
  switch (d) {
    case Device::Host: return isa_available(isa) && isa <= cap;
    // A device backend checks its own capabilities when it registers; the host ISA cap is not its.
    case Device::Cuda: return device_available(d);
  }
  return false;
}

}  // namespace qvl::ops
