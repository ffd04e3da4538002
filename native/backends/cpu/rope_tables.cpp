// cos/sin tables for every RoPE flavour Qwen uses. Built once per forward pass (T·R/2 entries), so
// plain scalar code in double is fast enough; what matters is rounding the angle exactly the way
// transformers does (see RopeAngles).
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/rope.h"

namespace qvl::ops {
namespace {

// inv_freq[j] = theta^(-2j/dim), j < count. In Transformers mode every step is float32, as in
// `1.0 / (theta ** (torch.arange(0, dim, 2).float() / dim))`.
std::vector<double> inv_freq(const RopeFreqs& f, int64_t dim, int64_t count) {
  std::vector<double> inv(static_cast<size_t>(count));
  for (int64_t j = 0; j < count; ++j) {
    if (f.angles == RopeAngles::Transformers) {
      const float e = static_cast<float>(2 * j) / static_cast<float>(dim);
      const float pw = static_cast<float>(std::pow(static_cast<double>(static_cast<float>(f.theta)), static_cast<double>(e)));
      inv[static_cast<size_t>(j)] = 1.0f / pw;
    } else {
      inv[static_cast<size_t>(j)] = std::pow(f.theta, -2.0 * static_cast<double>(j) / static_cast<double>(dim));
    }
  }
  return inv;
}

void put(const RopeFreqs& f, int64_t pos, double inv, float* c, float* s) {
  double a;
  if (f.angles == RopeAngles::Transformers) {
    a = static_cast<float>(static_cast<float>(pos) * static_cast<float>(inv));
  } else {
    a = static_cast<double>(pos) * inv;
  }
  *c = static_cast<float>(std::cos(a));
  *s = static_cast<float>(std::sin(a));
}

void check_common(const char* fn, const void* positions, int64_t T, const RopeFreqs& f, const float* cos,
                  const float* sin) {
  const std::string where = std::string(fn) + ": ";
  QVL_CHECK(T >= 0, Input, where + "T must be >= 0, got " + std::to_string(T));
  QVL_CHECK(f.rotary_dim >= 2 && f.rotary_dim % 2 == 0 && f.rotary_dim <= (1 << 20), Input,
            where + "rotary_dim must be even and in [2, 2^20], got " + std::to_string(f.rotary_dim));
  QVL_CHECK(std::isfinite(f.theta) && f.theta > 0, Input, where + "theta must be finite and > 0");
  QVL_CHECK(T <= (int64_t{1} << 40) / f.rotary_dim, Input, where + "T is too large");
  if (T > 0) QVL_CHECK(positions && cos && sin, Input, where + "positions, cos or sin is null");
}

void check_sections(const char* fn, const int64_t* sec, int64_t half) {
  const std::string where = std::string(fn) + ": ";
  QVL_CHECK(sec, Input, where + "sections is null");
  QVL_CHECK(sec[0] >= 0 && sec[1] >= 0 && sec[2] >= 0 && sec[0] + sec[1] + sec[2] == half, Input,
            where + "sections {" + std::to_string(sec[0]) + ", " + std::to_string(sec[1]) + ", " +
                std::to_string(sec[2]) + "} must be >= 0 and sum to rotary_dim/2 = " + std::to_string(half));
}

}  // namespace

void rope_table_1d(const int64_t* positions, int64_t T, const RopeFreqs& f, float* cos, float* sin) {
  check_common("rope_table_1d", positions, T, f, cos, sin);
  const int64_t half = f.rotary_dim / 2;
  const std::vector<double> inv = inv_freq(f, f.rotary_dim, half);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) put(f, positions[t], inv[i], &cos[t * half + i], &sin[t * half + i]);
}

void rope_table_mrope(const int64_t* positions, int64_t T, const int64_t sections[3], const RopeFreqs& f, float* cos,
                      float* sin) {
  check_common("rope_table_mrope", positions, T, f, cos, sin);
  const int64_t half = f.rotary_dim / 2;
  check_sections("rope_table_mrope", sections, half);
  const std::vector<double> inv = inv_freq(f, f.rotary_dim, half);
  std::vector<uint8_t> axes(static_cast<size_t>(half));
  rope_mrope_axes(sections, half, false, axes.data());
  for (int64_t i = 0; i < half; ++i) {
    const int64_t* pos = positions + axes[static_cast<size_t>(i)] * T;
    for (int64_t t = 0; t < T; ++t) put(f, pos[t], inv[i], &cos[t * half + i], &sin[t * half + i]);
  }
}

void rope_table_mrope_interleaved(const int64_t* positions, int64_t T, const int64_t sections[3], const RopeFreqs& f,
                                  float* cos, float* sin) {
  check_common("rope_table_mrope_interleaved", positions, T, f, cos, sin);
  const int64_t half = f.rotary_dim / 2;
  check_sections("rope_table_mrope_interleaved", sections, half);
  const std::vector<double> inv = inv_freq(f, f.rotary_dim, half);
  std::vector<uint8_t> axes(static_cast<size_t>(half));
  rope_mrope_axes(sections, half, true, axes.data());
  for (int64_t i = 0; i < half; ++i) {
    const int64_t* pos = positions + axes[static_cast<size_t>(i)] * T;
    for (int64_t t = 0; t < T; ++t) put(f, pos[t], inv[i], &cos[t * half + i], &sin[t * half + i]);
  }
}

void rope_mrope_axes(const int64_t sections[3], int64_t half, bool interleaved, uint8_t* axis) {
  check_sections(interleaved ? "rope_mrope_axes (interleaved)" : "rope_mrope_axes", sections, half);
  QVL_CHECK(half == 0 || axis, Input, "rope_mrope_axes: axis is null");
  for (int64_t i = 0; i < half; ++i) {
    int64_t a = 0;
    if (interleaved) {
      if (i % 3 == 1 && i < 3 * sections[1]) a = 1;
      if (i % 3 == 2 && i < 3 * sections[2]) a = 2;
    } else {
      a = i < sections[0] ? 0 : i < sections[0] + sections[1] ? 1 : 2;
    }
    axis[i] = static_cast<uint8_t>(a);
  }
}

void rope_table_vision_2d(const int64_t* hpos, const int64_t* wpos, int64_t T, const RopeFreqs& f, float* cos,
                          float* sin) {
  check_common("rope_table_vision_2d", hpos, T, f, cos, sin);
  QVL_CHECK(f.rotary_dim % 4 == 0, Input,
            "rope_table_vision_2d: rotary_dim (head_dim) must be a multiple of 4, got " + std::to_string(f.rotary_dim));
  if (T > 0) QVL_CHECK(wpos, Input, "rope_table_vision_2d: wpos is null");
  const int64_t half = f.rotary_dim / 2, quarter = f.rotary_dim / 4;
  // VisionRotaryEmbedding(dim = head_dim/2): frequencies over half the head, one set per axis.
  const std::vector<double> inv = inv_freq(f, half, quarter);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < quarter; ++j) {
      put(f, hpos[t], inv[j], &cos[t * half + j], &sin[t * half + j]);
      put(f, wpos[t], inv[j], &cos[t * half + quarter + j], &sin[t * half + quarter + j]);
    }
  }
}

}  // namespace qvl::ops
