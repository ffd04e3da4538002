// The bf16 matmul variants (ops/matmul.h, matmul_bf16) and the driver they share. The driver
// rounds x to bf16 once per call and packs weight blocks into the layout both AMX tiles and
// VDPBF16PS read: for each 32 k and 16 outputs, a 16 x 16 grid of k-pairs (row = pair, column =
// output, each element two bf16: w[n][2p], w[n][2p+1]), i.e. one 1 KiB AMX B tile. A variant
// supplies only the 32 x 32 block kernel (and, for AMX, the per-thread tile setup).
#pragma once
#include <cstdint>

#include "ops/matmul.h"

namespace qvl::cpu {

void matmul_bf16_ref(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_bf16_avx512bf16(const ops::MatmulParams& p, const ExecContext& ctx);
void matmul_bf16_amx(const ops::MatmulParams& p, const ExecContext& ctx);

// f32 -> bf16 as VCVTNE2PS2BF16 rounds: to nearest even, subnormal inputs read as zero (the
// hardware ignores MXCSR and treats them so), NaN kept quiet. The reference's rounding.
uint16_t bf16_round(float f);
// The f32 value bf16_round(f) stands for.
float bf16_rounded(float f);

// K per step of a block kernel and the rows/columns of one block.
inline constexpr int64_t kBf16Step = 32, kBf16Block = 32;
// u16 elements of one packed step of one 32-column block: two 16-column tiles of 16 pairs.
inline constexpr int64_t kBf16StepElems = 2 * 16 * 32;

// The part of a block that is not zero padding: the last step's first `last_pairs` k-pairs (1..16;
// the rest of a and b there are zero) and the first `cols` outputs (16 or 32; b's columns past
// them are zero). VDPBF16PS skips the rest (attention's head dim of 80 pads to 96: a sixth of its
// work), AMX computes whole tiles; either way c's first `cols` outputs are the same, and those
// past them hold a sum over zeros or are left as they were.
struct Bf16BlockShape {
  int last_pairs = 16;
  int cols = 32;
};
inline constexpr Bf16BlockShape kBf16Full{};

// Where a block kernel writing the matmul's result puts it (Bf16Kernels::block_out): y rows
// [0, rows) x columns [0, cols) of the block (row stride ldy) = the block's sum + bias (when not
// null, bias[0..cols)); with `stream`, whole 16-column pieces go out with non-temporal stores (y
// and ldy 64-byte aligned; the driver fences them).
struct Bf16BlockOut {
  float* y;
  int64_t ldy;
  const float* bias;
  int rows, cols;
  bool stream;
};

struct Bf16Kernels {
  // c[32][32] (row stride ldc floats) = (accumulate ? c : 0) + a · b over `steps` steps of 32 k:
  // a is 32 rows of bf16 (row stride lda elements, step s at a + 32 s), b is `steps` packed steps
  // (kBf16StepElems each: the tile of outputs 0..15, then that of 16..31).
  // `shape` says where the operands are zero padding the kernel may skip (kBf16Full: none).
  void (*block)(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, float* c, int64_t ldc,
                bool accumulate, const Bf16BlockShape& shape);
  // Run by each thread around its share of the work (null: nothing to do): AMX loads its tile
  // configuration first and releases the tiles after, so no tile state outlives the kernel.
  void (*begin)();
  void (*end)();
  // As `block`, for a block's last steps: the sum goes to `out` instead of back into c (c is read
  // only when accumulating). Null: the driver writes c out itself after the task.
  void (*block_out)(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t steps, const float* c, int64_t ldc,
                    bool accumulate, const Bf16BlockOut& out);
};

// Rows of a matrix the packer reads: row n at data + n * ld elements of dtype (F32, BF16 or F16),
// K elements long (k past K packs as zero). With `quant` set (q8, q4, f8 weights) rows are read
// instead through the format's dequantize_row (whole blocks) into f32, then packed as f32 rows
// are: the same bf16 rounding, no second copy of the weights (data, ld, dtype unused).
struct Bf16PanelSource {
  const void* data;
  int64_t ld, K;
  DType dtype;
  const WeightRef* quant = nullptr;
};
// Packs rows [n0, n1) x k [k0, k0 + kc) (kc a multiple of 32) into the block kernels' layout:
// 32-row blocks one after another, each kc / 32 packed steps; rows past n1 pack as zero.
void pack_bf16_panels(const Bf16PanelSource& src, int64_t n0, int64_t n1, int64_t k0, int64_t kc, uint16_t* out);
// The AMX block kernel and its tile setup, and the VDPBF16PS one (attention_bf16 reuses them).
const Bf16Kernels& amx_bf16_kernels();
const Bf16Kernels& avx512bf16_bf16_kernels();

// For the parity harness (AMX CPUs only): true when the calling thread holds no tile
// configuration (STTILECFG stores zeros once the tiles are released).
bool amx_tiles_released();

// Handles the empty cases, converts x, threads the blocks over ctx's pool, polls p.cancel
// between tasks.
void run_matmul_bf16(const ops::MatmulParams& p, const ExecContext& ctx, const Bf16Kernels& k);

}  // namespace qvl::cpu
