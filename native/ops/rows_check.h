// Validation shared by the row-wise ops (norms, softmax, activations, embedding): a matrix of
// `rows` rows of `cols` elements, `ld` elements apart, must be addressable and non-null.
#pragma once
#include <cstdint>
#include <limits>
#include <string>

#include "core/error.h"

namespace qvl::ops {

// Throws E_INPUT naming op and the argument unless rows >= 0, cols >= 1, ld >= cols, the last
// element's byte offset fits in int64, and ptr is non-null and aligned for its element type
// whenever there is anything to read or write.
inline void check_rows(const char* op, const char* what, const void* ptr, int64_t rows, int64_t cols, int64_t ld,
                       size_t elem_size) {
  const std::string where = std::string(op) + ": " + what;
  QVL_CHECK(rows >= 0, Input, where + ": row count must be >= 0 (got " + std::to_string(rows) + ")");
  QVL_CHECK(cols >= 1, Input, where + ": row length must be >= 1 (got " + std::to_string(cols) + ")");
  QVL_CHECK(ld >= cols, Input,
            where + ": row stride (" + std::to_string(ld) + ") must be >= the row length (" + std::to_string(cols) + ")");
  if (rows == 0) return;
  const int64_t limit = std::numeric_limits<int64_t>::max() / static_cast<int64_t>(elem_size);
  QVL_CHECK(cols <= limit && rows - 1 <= (limit - cols) / ld, Input, where + ": " + std::to_string(rows) + " rows of stride " +
                                                        std::to_string(ld) + " are too large to address");
  QVL_CHECK(ptr != nullptr, Input, where + " is null");
  QVL_CHECK(reinterpret_cast<uintptr_t>(ptr) % elem_size == 0, Input,
            where + " is not aligned to its element size (" + std::to_string(elem_size) + " bytes)");
}

}  // namespace qvl::ops
