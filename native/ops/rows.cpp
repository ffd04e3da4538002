#include "ops/rows.h"

#include "ops/backends.h"

#include <string>
#include <vector>

#include "ops/rows_check.h"

namespace qvl::ops {

const OpFamily<RowsFn>& rows_family() {
  static const OpFamily<RowsFn> family("rows", QVL_BACKEND_VARIANTS(rows));
  return family;
}

const char* rows_kind_name(RowsKind k) {
  switch (k) {
    case RowsKind::Add: return "add";
    case RowsKind::Gather: return "gather";
    case RowsKind::Scatter: return "scatter";
    case RowsKind::AddIndexed: return "add_indexed";
  }
  return "?";
}

namespace {

// Byte range [first, last) a matrix touches; empty when rows == 0.
struct Span {
  uintptr_t first = 0, last = 0;
};
Span span_of(const float* p, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0) return {};
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  return {b, b + static_cast<uintptr_t>((rows - 1) * ld + cols) * sizeof(float)};
}

template <class I>
void check_indexes(const RowsParams& p, const I* idx) {
  const bool scatter = p.kind == RowsKind::Scatter;
  std::vector<char> taken(scatter ? static_cast<size_t>(p.indexed_rows) : 0, 0);
  for (int64_t i = 0; i < p.n; ++i) {
    const int64_t r = static_cast<int64_t>(idx[i]);
    if (r < 0) continue;
    if (r >= p.indexed_rows)
      fail(ErrorCode::Input, std::string("rows ") + rows_kind_name(p.kind) + ": index at position " + std::to_string(i) +
                                 " is " + std::to_string(r) + ", past the " + std::to_string(p.indexed_rows) + " rows");
    if (scatter) {
      if (taken[static_cast<size_t>(r)])
        fail(ErrorCode::Input, "rows scatter: index at position " + std::to_string(i) + " is " + std::to_string(r) +
                                   ", a row already written (targets must be distinct)");
      taken[static_cast<size_t>(r)] = 1;
    }
  }
}

}  // namespace

void check_rows_op(const RowsParams& p) {
  const char* op = "rows";
  const RowsKind k = p.kind;
  QVL_CHECK(k == RowsKind::Add || k == RowsKind::Gather || k == RowsKind::Scatter || k == RowsKind::AddIndexed, Input,
            "rows: unknown kind");
  QVL_CHECK(p.n >= 0, Input, "rows: n must be >= 0, got " + std::to_string(p.n));
  const bool indexed = k != RowsKind::Add;
  // Rows of each side: the side the index addresses has indexed_rows, the other n.
  const int64_t dst_rows = k == RowsKind::Scatter ? p.indexed_rows : p.n;
  const int64_t src_rows = k == RowsKind::Gather || k == RowsKind::AddIndexed ? p.indexed_rows : p.n;
  if (indexed) QVL_CHECK(p.indexed_rows >= 0, Input, "rows: indexed_rows must be >= 0");
  // A zero-row side still needs valid cols and strides; nothing is touched when n == 0.
  check_rows(op, "dst", p.dst, p.n == 0 ? 0 : dst_rows, p.cols, p.ldd, sizeof(float));
  check_rows(op, "src", p.src, p.n == 0 ? 0 : src_rows, p.cols, p.lds, sizeof(float));
  if (p.n == 0) return;
  const Span d = span_of(p.dst, dst_rows, p.cols, p.ldd), s = span_of(p.src, src_rows, p.cols, p.lds);
  QVL_CHECK(d.last <= s.first || s.last <= d.first || d.first == d.last || s.first == s.last, Input,
            "rows: src and dst overlap");
  if (!indexed) return;
  QVL_CHECK(p.idx_dtype == DType::I32 || p.idx_dtype == DType::I64, Input,
            std::string("rows: indexes must be i32 or i64 (got ") + dtype_name(p.idx_dtype) + ")");
  check_rows(op, "idx", p.idx, p.n, 1, 1, dtype_size(p.idx_dtype));
  if (p.idx_dtype == DType::I32) check_indexes(p, static_cast<const int32_t*>(p.idx));
  else check_indexes(p, static_cast<const int64_t*>(p.idx));
}

void rows(const RowsParams& p, const ExecContext& ctx) {
  OpTimer timer(ctx, "rows");
  check_rows_op(p);
  if (p.n == 0) return;
  rows_family().best(ctx.device()).fn(p, ctx);
}

}  // namespace qvl::ops
