// Run-time kernel dispatch. Every op family lists its variants, the plain reference first;
// the dispatcher picks the best one this CPU runs. QWENVL_MAX_ISA (reference, generic, avx2,
// avx512, avx512bf16, amx) caps the choice, e.g. to compare speeds or rule out a kernel.
// Ops that read weights (matmul, moe) also key their variants by weight format: a variant's
// `formats` mask (format_bit of each WeightFormat it reads) and best_for(format) pick among those.
// The device is the ISA's (Isa::Cuda runs on the GPU, every other level on the host).
#pragma once
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/weight_format.h"

namespace qvl::ops {

class OpFamilyBase {
 public:
  struct Info { const char* name; Isa isa; uint32_t formats; };
  virtual ~OpFamilyBase() = default;
  const char* name() const { return name_; }
  virtual std::vector<Info> variant_infos() const = 0;
  virtual const char* chosen_name() const = 0;
  // The variant run for weights in format f (ops that read weights); null when none reads f.
  virtual const char* chosen_name_for(WeightFormat f) const = 0;

 protected:
  explicit OpFamilyBase(const char* name) : name_(name) {}
  static bool allowed(Isa isa);  // available on this CPU and under QWENVL_MAX_ISA

 private:
  const char* name_;
};

template <class Fn>
struct Variant {
  const char* name;
  Isa isa;
  Fn fn;
  // Weight formats this variant reads (format_bit mask); 0 for ops that take no weights.
  uint32_t formats = 0;
  bool reads(WeightFormat f) const { return (formats & format_bit(f)) != 0; }
};

template <class Fn>
class OpFamily final : public OpFamilyBase {
 public:
  OpFamily(const char* name, std::vector<Variant<Fn>> variants) : OpFamilyBase(name), variants_(std::move(variants)) {
    best_ = 0;
    for (size_t i = 1; i < variants_.size(); ++i) {
      if (allowed(variants_[i].isa) && variants_[i].isa >= variants_[best_].isa) best_ = i;
    }
  }
  const Variant<Fn>& reference() const { return variants_[0]; }
  const Variant<Fn>& best() const { return variants_[best_]; }
  // The best allowed variant that reads weights in format f; null when none does.
  const Variant<Fn>* best_for(WeightFormat f) const {
    const Variant<Fn>* out = nullptr;
    for (const auto& v : variants_) {
      if (v.reads(f) && allowed(v.isa) && (!out || v.isa >= out->isa)) out = &v;
    }
    return out;
  }
  const std::vector<Variant<Fn>>& variants() const { return variants_; }
  // Variants this machine can run (the parity harness tests each against the reference).
  std::vector<Variant<Fn>> runnable() const {
    std::vector<Variant<Fn>> out;
    for (const auto& v : variants_) if (isa_available(v.isa)) out.push_back(v);
    return out;
  }
  std::vector<Info> variant_infos() const override {
    std::vector<Info> out;
    for (const auto& v : variants_) out.push_back({v.name, v.isa, v.formats});
    return out;
  }
  const char* chosen_name() const override { return best().name; }
  const char* chosen_name_for(WeightFormat f) const override {
    const Variant<Fn>* v = best_for(f);
    return v ? v->name : nullptr;
  }

 private:
  std::vector<Variant<Fn>> variants_;
  size_t best_ = 0;
};

// Every op family, for info() and the benchmarks (ops/catalog.cpp: one line per family).
std::vector<const OpFamilyBase*> op_catalog();

}  // namespace qvl::ops
