// Run-time kernel dispatch. Every op family lists its variants, the plain reference first;
// the dispatcher picks the best one this CPU runs. QWENVL_MAX_ISA (reference, generic, avx2,
// avx512, avx512bf16, amx) caps the choice, e.g. to compare speeds or rule out a kernel.
#pragma once
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"

namespace qvl::ops {

class OpFamilyBase {
 public:
  struct Info { const char* name; Isa isa; };
  virtual ~OpFamilyBase() = default;
  const char* name() const { return name_; }
  virtual std::vector<Info> variant_infos() const = 0;
  virtual const char* chosen_name() const = 0;

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
  const std::vector<Variant<Fn>>& variants() const { return variants_; }
  // Variants this machine can run (the parity harness tests each against the reference).
  std::vector<Variant<Fn>> runnable() const {
    std::vector<Variant<Fn>> out;
    for (const auto& v : variants_) if (isa_available(v.isa)) out.push_back(v);
    return out;
  }
  std::vector<Info> variant_infos() const override {
    std::vector<Info> out;
    for (const auto& v : variants_) out.push_back({v.name, v.isa});
    return out;
  }
  const char* chosen_name() const override { return best().name; }

 private:
  std::vector<Variant<Fn>> variants_;
  size_t best_ = 0;
};

// Every op family, for info() and the benchmarks (ops/catalog.cpp: one line per family).
std::vector<const OpFamilyBase*> op_catalog();

}  // namespace qvl::ops
