// Padded row buffers for the row-wise ops' parity suites (norm, softmax): `rows` rows of `dim`
// values, the input rows `dim + pad` apart and the output rows `dim + pad + 2` apart (unpadded when
// pad is 0), or in place in the input buffer. Input padding is NaN (a kernel that reads it poisons
// its row); output padding is kUnwritten (a kernel that writes it is caught by finish()).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/parity.h"

namespace qvl::parity {

class PaddedRows {
 public:
  // xs: the input rows, dense [rows, dim].
  PaddedRows(const std::vector<float>& xs, int64_t rows, int64_t dim, int64_t pad, bool in_place)
      : rows_(rows),
        dim_(dim),
        ldx_(dim + pad),
        ldo_(in_place ? ldx_ : dim + (pad ? pad + 2 : 0)),
        in_place_(in_place),
        x_(extent(rows, dim, ldx_)),
        out_(in_place ? 0 : extent(rows, dim, ldo_)) {
    for (size_t i = 0; i < x_.size(); ++i) x_[i] = in_place ? unwritten() : std::nanf("");
    for (size_t i = 0; i < out_.size(); ++i) out_[i] = unwritten();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < dim; ++i) x_[r * ldx_ + i] = xs[r * dim + i];
  }
  const float* x() const { return x_.data(); }
  int64_t ldx() const { return ldx_; }
  float* out() { return in_place_ ? x_.data() : out_.data(); }
  int64_t ldo() const { return ldo_; }

  // After the kernel ran: compares its outputs with want (dense [rows, dim]) within tol (relative
  // to max(|want|, floor)) and records in r whether the guards and the output row padding held.
  void finish(const std::vector<float>& want, double tol, double floor, Result* r) {
    const float* o = out();
    std::vector<float> got(static_cast<size_t>(rows_ * dim_));
    bool pad_ok = true;
    for (int64_t row = 0; row < rows_; ++row) {
      for (int64_t i = 0; i < dim_; ++i) got[row * dim_ + i] = o[row * ldo_ + i];
      for (int64_t i = dim_; row + 1 < rows_ && i < ldo_; ++i) pad_ok = pad_ok && is_unwritten(o[row * ldo_ + i]);
    }
    compare(got.data(), want.data(), got.size(), tol, floor, r);
    r->guards_ok = x_.intact() && out_.intact() && pad_ok;
    if (!pad_ok) r->note = "wrote into the row padding of out";
  }

 private:
  int64_t rows_, dim_, ldx_, ldo_;
  bool in_place_;
  Guarded<float> x_, out_;
};

}  // namespace qvl::parity
