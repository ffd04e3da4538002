// AMX bf16 matmul: each 32 x 32 block is 2 x 2 accumulator tiles (tmm0-3, 16 x 16 f32), fed per
// 32-k step by two x tiles (tmm4-5, 16 rows x 32 bf16) and two packed weight tiles (tmm6-7,
// 16 pairs x 16 outputs) through four TDPBF16PS. Every thread that runs blocks loads the tile
// configuration first (Bf16Kernels::begin) and releases the tiles when done (end), so tile state
// never leaks into other code on the pool's threads or the caller's.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/matmul_bf16_cpu.h"

namespace qvl::cpu {

namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;  // all eight tiles: 16 rows x 64 bytes
  return c;
}

const TileConfig kConfig = make_config();

QVL_TARGET_AMX void begin() { _tile_loadconfig(&kConfig); }
QVL_TARGET_AMX void end() { _tile_release(); }

// Whole tiles always (the padding is zero): `shape` changes nothing here.
QVL_TARGET_AMX void block(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, float* c, int64_t ldc,
                          bool accumulate, const Bf16BlockShape&) {
  const int64_t cs = ldc * 4, as = lda * 2;
  float* c1 = c + 16 * ldc;
  if (accumulate) {
    _tile_loadd(0, c, cs);
    _tile_loadd(1, c + 16, cs);
    _tile_loadd(2, c1, cs);
    _tile_loadd(3, c1 + 16, cs);
  } else {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  }
  const uint16_t* a1 = a + 16 * lda;
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t* bs = b + s * kBf16StepElems;
    _tile_loadd(4, a + s * kBf16Step, as);
    _tile_loadd(6, bs, 64);
    _tile_loadd(7, bs + 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a1 + s * kBf16Step, as);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, cs);
  _tile_stored(1, c + 16, cs);
  _tile_stored(2, c1, cs);
  _tile_stored(3, c1 + 16, cs);
}

const Bf16Kernels kKernels = {block, begin, end, nullptr};

}  // namespace

const Bf16Kernels& amx_bf16_kernels() { return kKernels; }

QVL_TARGET_AMX bool amx_tiles_released() {
  TileConfig now;
  now.palette = 0xff;
  _tile_storeconfig(&now);
  if (now.palette != 0 || now.start_row != 0) return false;
  for (int t = 0; t < 16; ++t)
    if (now.colsb[t] != 0 || now.rows[t] != 0) return false;
  return true;
}

void matmul_bf16_amx(const ops::MatmulParams& p, const ExecContext& ctx) { run_matmul_bf16(p, ctx, kKernels); }

}  // namespace qvl::cpu
