// Row movement and row adds over float32 matrices: the glue between the model's big ops (residual
// adds, the DeepStack injection, vision features put into embedding rows, the window permutation
// of merge groups and its inverse, the LM head's row pick). One "row" is `cols` contiguous floats;
// rows are `ld` floats apart, so a whole merge group (merge² patch rows) can be one row.
//
//   Add        dst[i] += src[i]                      i < n
//   Gather     dst[i]  = src[idx[i]]                 i < n, idx[i] >= 0 (negative: dst[i] kept)
//   Scatter    dst[idx[i]] = src[i]                  i < n, idx[i] >= 0; targets must be distinct
//   AddIndexed dst[i] += src[idx[i]]                 i < n, idx[i] >= 0 (DeepStack)
//
// The indexed side (src for Gather and AddIndexed, dst for Scatter) has `indexed_rows` rows; every
// index is checked against it before anything is written. Adds are plain float32 adds, one
// rounding per element, so every variant is bit-identical to the reference.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/threadpool.h"
#include "ops/registry.h"

namespace qvl::ops {

enum class RowsKind { Add, Gather, Scatter, AddIndexed };

struct RowsParams {
  RowsKind kind = RowsKind::Add;
  int64_t n = 0;     // rows (Add) or index entries (the others)
  int64_t cols = 0;  // floats per row, >= 1
  float* dst = nullptr;
  int64_t ldd = 0;  // dst row stride (floats, >= cols)
  const float* src = nullptr;
  int64_t lds = 0;           // src row stride (floats, >= cols)
  int64_t indexed_rows = 0;  // rows of the side idx addresses; unused by Add
  const void* idx = nullptr;    // [n] of idx_dtype; unused by Add
  DType idx_dtype = DType::I64;  // I32 or I64
};

using RowsFn = void (*)(const RowsParams&, const ExecContext&);

const OpFamily<RowsFn>& rows_family();

const char* rows_kind_name(RowsKind k);
// Throws E_INPUT unless p is consistent: sizes and strides addressable, pointers non-null and
// aligned, src and dst not overlapping, every index < indexed_rows, Scatter targets distinct. The
// message names the first bad index and its position. The kernels assume this has passed.
void check_rows_op(const RowsParams& p);
// Validates (E_INPUT) and runs the best variant.
void rows(const RowsParams& p, const ExecContext& ctx);

}  // namespace qvl::ops
