#include "tests/amx_emulator.h"

#include <cmath>
#include <cstring>
#include <mutex>

#include "core/dtype.h"

namespace qvl::parity::amx_emu {

namespace {

constexpr int kTiles = 8, kMaxRows = 16, kMaxColsb = 64;

// LDTILECFG's 64-byte block (palette 1).
struct Config {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static_assert(sizeof(Config) == 64, "LDTILECFG reads 64 bytes");

struct Unit {
  Config cfg{};  // all zero: the INIT state (no palette)
  uint8_t t[kTiles][kMaxRows][kMaxColsb] = {};
};
thread_local Unit unit;

std::mutex fault_mu;
std::string first_fault;

void fault(const std::string& what) {
  std::lock_guard<std::mutex> lk(fault_mu);
  if (first_fault.empty()) first_fault = what;
}

bool valid(int tile, const char* op) {
  if (unit.cfg.palette == 0) return fault(std::string(op) + " with no tile configuration loaded (#UD)"), false;
  if (tile < 0 || tile >= kTiles || unit.cfg.rows[tile] == 0 || unit.cfg.colsb[tile] == 0) {
    return fault(std::string(op) + " on tile " + std::to_string(tile) + ", not configured (#UD)"), false;
  }
  return true;
}

void zero_all(int tile) { std::memset(unit.t[tile], 0, sizeof(unit.t[tile])); }

// A bf16 element as TDPBF16PS reads it: subnormals as zero.
float bf16_in(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return (h & 0x7f80) == 0 ? 0.0f * bf16_to_f32(h) : bf16_to_f32(h);  // keeps the sign of a zero
}

float ftz(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }

}  // namespace

void loadconfig(const void* config) {
  Config c;
  std::memcpy(&c, config, sizeof c);
  if (c.palette > 1) return fault("LDTILECFG: palette " + std::to_string(c.palette) + " (#GP)");
  if (c.palette == 0) return release();
  for (uint8_t b : c.reserved)
    if (b != 0) return fault("LDTILECFG: reserved bytes not zero (#GP)");
  if (c.start_row != 0) return fault("LDTILECFG: start_row not zero (a restart the kernels never ask for)");
  for (int i = 0; i < 16; ++i) {
    const bool beyond = i >= kTiles;
    if (c.rows[i] > (beyond ? 0 : kMaxRows) || c.colsb[i] > (beyond ? 0 : kMaxColsb)) {
      return fault("LDTILECFG: tile " + std::to_string(i) + " larger than palette 1 allows (#GP)");
    }
    if ((c.rows[i] == 0) != (c.colsb[i] == 0)) return fault("LDTILECFG: tile " + std::to_string(i) + " has rows or bytes but not both (#GP)");
  }
  unit.cfg = c;
  for (int i = 0; i < kTiles; ++i) zero_all(i);
}

void storeconfig(void* config) { std::memcpy(config, &unit.cfg, sizeof unit.cfg); }

void release() {
  unit.cfg = Config{};
  for (int i = 0; i < kTiles; ++i) zero_all(i);
}

void loadd(int tile, const void* base, int64_t stride) {
  if (!valid(tile, "TILELOADD")) return;
  zero_all(tile);
  for (int r = 0; r < unit.cfg.rows[tile]; ++r) {
    std::memcpy(unit.t[tile][r], static_cast<const uint8_t*>(base) + r * stride, unit.cfg.colsb[tile]);
  }
}

void stored(int tile, void* base, int64_t stride) {
  if (!valid(tile, "TILESTORED")) return;
  for (int r = 0; r < unit.cfg.rows[tile]; ++r) {
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, unit.t[tile][r], unit.cfg.colsb[tile]);
  }
}

void zero(int tile) {
  if (valid(tile, "TILEZERO")) zero_all(tile);
}

void dpbf16ps(int dst, int src1, int src2) {
  if (!valid(dst, "TDPBF16PS") || !valid(src1, "TDPBF16PS") || !valid(src2, "TDPBF16PS")) return;
  const Config& c = unit.cfg;
  if (dst == src1 || dst == src2 || src1 == src2) return fault("TDPBF16PS: a tile used twice (#UD)");
  if (c.rows[dst] != c.rows[src1] || c.colsb[dst] != c.colsb[src2] || c.colsb[src1] != 4 * c.rows[src2] ||
      c.colsb[dst] % 4 != 0) {
    return fault("TDPBF16PS: tile shapes disagree (tmm" + std::to_string(dst) + " += tmm" + std::to_string(src1) + " x tmm" +
                 std::to_string(src2) + ", #UD)");
  }
  const int rows = c.rows[dst], n_cols = c.colsb[dst] / 4, pairs = c.colsb[src1] / 4;
  for (int m = 0; m < rows; ++m) {
    float tmp[kMaxColsb / 4];
    std::memcpy(tmp, unit.t[dst][m], sizeof tmp);
    for (int k = 0; k < pairs; ++k) {
      const float a0 = bf16_in(&unit.t[src1][m][4 * k]), a1 = bf16_in(&unit.t[src1][m][4 * k + 2]);
      for (int n = 0; n < n_cols; ++n) {
        // Each bf16 product is exact in f32; the two adds round in turn (the SDM's order).
        tmp[n] = ftz(tmp[n] + a0 * bf16_in(&unit.t[src2][k][4 * n]));
        tmp[n] = ftz(tmp[n] + a1 * bf16_in(&unit.t[src2][k][4 * n + 2]));
      }
    }
    std::memset(unit.t[dst][m], 0, kMaxColsb);
    std::memcpy(unit.t[dst][m], tmp, static_cast<size_t>(n_cols) * 4);
  }
  for (int m = rows; m < kMaxRows; ++m) std::memset(unit.t[dst][m], 0, kMaxColsb);
}

std::string take_fault() {
  std::lock_guard<std::mutex> lk(fault_mu);
  std::string f;
  f.swap(first_fault);
  return f;
}

}  // namespace qvl::parity::amx_emu
