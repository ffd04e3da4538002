// Embedding lookup: out[t] = table[ids[t]] as f32. ids are int32 or int64; the table [vocab,
// hidden] is stored as in the checkpoint (f32, bf16 or f16) and converted exactly. Every id is
// range-checked before anything is written, so a bad id leaves out untouched.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

struct EmbeddingParams {
  int64_t n = 0;                  // number of ids
  const void* ids = nullptr;      // [n] of ids_dtype
  DType ids_dtype = DType::I32;   // I32 or I64
  const void* table = nullptr;    // [vocab, hidden] of table_dtype, row stride ldt
  DType table_dtype = DType::F32;  // F32, BF16 or F16
  int64_t vocab = 0, hidden = 0, ldt = 0;
  float* out = nullptr;  // [n, hidden], row stride ldo; must not overlap the table
  int64_t ldo = 0;
};

using EmbeddingFn = void (*)(const EmbeddingParams&, const ExecContext&);

const OpFamily<EmbeddingFn>& embedding_family();

// Throws E_INPUT unless p describes a consistent problem and every id is in [0, vocab); the
// message names the first bad id and its position. The kernels assume this has passed.
void check_embedding(const EmbeddingParams& p);
// Validates (E_INPUT) and runs the best variant.
void embedding(const EmbeddingParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
