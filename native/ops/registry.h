// Run-time kernel dispatch. Every op family lists its variants, the plain host reference first;
// the dispatcher picks, among the variants of the context's device, the best one this machine
// runs. A variant is keyed by (device, ISA, weight formats):
// - device: where it runs and where its buffers must be (core/device.h). Each backend registers
//   its own variants (backends/cpu/variants.cpp, backends/cuda/variants.cpp); ops/backends.h
//   joins the backends' lists, so adding a device touches its backend folder and that list.
// - ISA: the instruction-set level it needs; QWENVL_MAX_ISA (reference, generic, avx2, avxvnni,
//   avx512, avx512vnni, avx512bf16, amx) caps the choice on the host, e.g. to compare speeds or rule out a kernel.
// - formats: ops that read weights (matmul, moe) list the weight formats a variant reads
//   (format_bit mask); best_for(device, format) picks among those.
#pragma once
#include <array>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/device.h"
#include "core/error.h"
#include "core/weight_format.h"

namespace qvl::ops {

class OpFamilyBase {
 public:
  struct Info { const char* name; Device device; Isa isa; uint32_t formats; };
  virtual ~OpFamilyBase() = default;
  const char* name() const { return name_; }
  virtual std::vector<Info> variant_infos() const = 0;
  // The variant run on the host (the device every family has variants for).
  virtual const char* chosen_name() const = 0;
  // The host variant run for weights in format f (ops that read weights); null when none reads f.
  virtual const char* chosen_name_for(WeightFormat f) const = 0;

  // Runnable here: the device is present and, on the host, the CPU has the ISA and
  // QWENVL_MAX_ISA allows it.
  static bool allowed(Device d, Isa isa);

 protected:
  explicit OpFamilyBase(const char* name) : name_(name) {}

 private:
  const char* name_;
};

template <class Fn>
struct Variant {
  const char* name;
  Device device;
  Isa isa;
  Fn fn;
  // Weight formats this variant reads (format_bit mask); 0 for ops that take no weights.
  uint32_t formats = 0;
  bool reads(WeightFormat f) const { return (formats & format_bit(f)) != 0; }
};

// The backends' variant lists joined into one family list (ops/backends.h calls it).
template <class Fn>
std::vector<Variant<Fn>> join_variants(std::initializer_list<std::vector<Variant<Fn>>> lists) {
  std::vector<Variant<Fn>> out;
  for (const auto& l : lists) out.insert(out.end(), l.begin(), l.end());
  return out;
}

template <class Fn>
class OpFamily final : public OpFamilyBase {
 public:
  OpFamily(const char* name, std::vector<Variant<Fn>> variants) : OpFamilyBase(name), variants_(std::move(variants)) {
    QVL_CHECK(!variants_.empty() && variants_[0].device == Device::Host && variants_[0].isa == Isa::Reference, Native,
              std::string(name) + ": the first variant must be the host reference");
    for (int d = 0; d < kDeviceCount; ++d) {
      const Device dev = static_cast<Device>(d);
      best_[d] = -1;
      for (size_t i = 0; i < variants_.size(); ++i) {
        const Variant<Fn>& v = variants_[i];
        if (v.device != dev || !allowed(v.device, v.isa)) continue;
        if (best_[d] < 0 || v.isa >= variants_[static_cast<size_t>(best_[d])].isa) best_[d] = static_cast<int>(i);
      }
    }
  }
  const Variant<Fn>& reference() const { return variants_[0]; }
  // The best variant runnable on device d; E_UNSUPPORTED when the family has none there.
  const Variant<Fn>& best(Device d = Device::Host) const {
    const int i = best_[static_cast<int>(d)];
    if (i < 0) fail(ErrorCode::Unsupported, std::string(name()) + ": no kernel runs on " + device_name(d));
    return variants_[static_cast<size_t>(i)];
  }
  // The best runnable variant on device d that reads weights in format f; null when none does.
  const Variant<Fn>* best_for(Device d, WeightFormat f) const {
    const Variant<Fn>* out = nullptr;
    for (const auto& v : variants_) {
      if (v.device == d && v.reads(f) && allowed(v.device, v.isa) && (!out || v.isa >= out->isa)) out = &v;
    }
    return out;
  }
  const std::vector<Variant<Fn>>& variants() const { return variants_; }
  // Variants this machine can run, on every device (the parity harness tests each against the
  // reference and reports the device of each).
  std::vector<Variant<Fn>> runnable() const {
    std::vector<Variant<Fn>> out;
    for (const auto& v : variants_) {
      if (device_available(v.device) && (v.device != Device::Host || isa_available(v.isa))) out.push_back(v);
    }
    return out;
  }
  std::vector<Info> variant_infos() const override {
    std::vector<Info> out;
    for (const auto& v : variants_) out.push_back({v.name, v.device, v.isa, v.formats});
    return out;
  }
  const char* chosen_name() const override { return best(Device::Host).name; }
  const char* chosen_name_for(WeightFormat f) const override {
    const Variant<Fn>* v = best_for(Device::Host, f);
    return v ? v->name : nullptr;
  }

 private:
  std::vector<Variant<Fn>> variants_;
  std::array<int, kDeviceCount> best_{};
};

// Every op family, for info() and the benchmarks (ops/catalog.cpp: one line per family).
std::vector<const OpFamilyBase*> op_catalog();

}  // namespace qvl::ops
