// Elementwise activations over rows of fp32, as transformers defines them:
//   gelu_erf    0.5·x·(1 + erf(x/√2))                      nn.GELU(), "gelu" (vision mergers)
//   gelu_tanh   0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))  "gelu_pytorch_tanh" (Qwen3-VL vision)
//   quick_gelu  x·sigmoid(1.702·x)                         "quick_gelu" (Qwen2-VL vision)
//   silu        x·sigmoid(x)                               "silu"
//   swiglu      silu(gate)·up                              gated MLPs (text, Qwen2.5-VL vision)
// For swiglu, x is the gate and up the second operand; a fused [T, 2I] gate_up buffer is passed as
// x = buf, up = buf + I, ldx = ldu = 2I, dim = I.
//
// Accuracy of the fast variants against the double reference, measured on every 64th float in
// [-20, 20] (34M inputs, both signs) and on ±0, ±20, ±1e30, ±inf, NaN: relative error at most
// 4.1e-7 (gelu_erf), 1.8e-7 (gelu_tanh), 1.9e-7 (quick_gelu), 1.8e-7 (silu; swiglu 2.4e-7 in the
// parity suite) with a floor of 1e-6 on |ref|, i.e. absolute error <= 3.4e-13 where |ref| < 1e-6.
// Results below ~1e-36 in magnitude may come out as ±0. NaN propagates; ±inf give what the formulas give in IEEE
// arithmetic (silu(-inf) is NaN, as in torch).
#pragma once
#include <cstdint>

#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

// Values are stable (they may cross the N-API boundary as integers).
enum class ActKind : int32_t { GeluErf = 0, GeluTanh = 1, QuickGelu = 2, Silu = 3, SwiGlu = 4 };
const char* act_kind_name(ActKind k);

struct ActivationParams {
  ActKind kind = ActKind::Silu;
  int64_t rows = 0, dim = 0;
  const float* x = nullptr;  // [rows, dim], row stride ldx; the gate for swiglu
  int64_t ldx = 0;
  const float* up = nullptr;  // swiglu only: [rows, dim], row stride ldu
  int64_t ldu = 0;
  // [rows, dim], row stride ldo. In place: out == x (or out == up for swiglu) with the same
  // stride. Otherwise out must share no element with the inputs.
  float* out = nullptr;
  int64_t ldo = 0;
};

using ActivationFn = void (*)(const ActivationParams&, const ExecContext&);

const OpFamily<ActivationFn>& activation_family();

// Throws E_INPUT unless p describes a consistent problem (the kernels assume it does).
void check_activation(const ActivationParams& p);
// Validates (E_INPUT) and runs the best variant.
void activation(const ActivationParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
