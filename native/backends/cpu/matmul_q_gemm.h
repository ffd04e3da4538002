// The Int8Dot GEMM path (q8, q4 weights, many activation rows). Like the matvec tiles of
// matmul_q_*.cpp it puts 16 outputs in the lanes of a register: one 64-byte vector holds 4
// consecutive k of 16 outputs, which is how the weights are stored (16-row panels,
// core/weight_quant.h), and 4 activation codes broadcast to every lane feed 16 outputs at once. A
// 32-block then costs 8 vpdpbusd per 16 outputs and row, and one convert, multiply and FMA for its
// scales. What the GEMM adds is reuse: a tile of activation rows sweeps chunks of panels held in
// L1/L2, and the activations are interleaved per tile so that each row tile is one stream.
//
// AVX512-VNNI (matmul_q_gemm_avx512vnni.cpp) multiplies the stored bytes (unsigned: q8 biased by
// 128, q4 codes unpacked per chunk with 16 − z added) by the activation codes as quantized
// (signed), and starts each block's integer dot at −offset·Σx of its activation row and block, so
// the integer block dots are the reference's exactly, zero points included; only the f32
// rounding of the scale products and their sums differs, as for the matvec kernels. Per block
// and 16 outputs a row costs 8 vpdpbusd and 3 f32 operations (convert, scale, FMA) on the same
// two ports, so the bound is ~73% of the vpdpbusd peak; in groups of several blocks (q8/q4
// quantized at load: 64) 2 a block and one a group, ~76% (on Zen 5 the tile reached ~77% of the
// probe's peak in 64s, M = 1024 at the 2B widths). An AMX-int8 prototype of the earlier,
// repacking GEMM (TDPBUSD on 32 x 32 tiles, one K = 32 step per block, the tiles stored and scaled
// with AVX-512 after each) measured only 2-10% faster, bound by that per-block scaling: not kept.
//
// The ymm variants (AVX-VNNI, AVX2) run the scheme with 8 outputs per register
// (matmul_q_gemm_ymm.h); all share the work split below and the activation interleave.
#pragma once
#include <cstdint>
#include <functional>

#include "backends/cpu/matmul_q.h"
#include "core/weight_quant.h"

namespace qvl::cpu {

// Rows from which every variant with a GEMM runs it rather than its matvec tiles. Measured before
// the panel layout (row-major q8/q4, the GEMM repacking per call; not measured again since) with
// bench_matmul on the 2B model's widths (Sapphire Rapids VM, q8): with the weights cached, one
// thread, the AVX512-VNNI GEMM is 1.5x faster at M = 6 and 1.8-2.4x at 8-12; streaming the
// weights from DRAM on two threads the two are within the noise up to M = 8 (both read each
// weight once); from M = 16 the GEMM is 1.5-2.9x the dense exact kernel's speed while the matvec
// tiles are not faster than it. The ymm GEMMs against their own row tiles (bench qgemm, same VM
// with the ISA forced, two threads on a loaded machine, weights from DRAM): 0.6-2.0x at M = 8
// (within the noise, as AVX512-VNNI's 0.7-2.0x in the same run), 1.0-3.1x at 16, 1.4-3.8x at 512.
constexpr int64_t kQGemmMinRows = 8;

// Activation rows per register tile of every GEMM kernel (and per interleaved tile of a).
constexpr int kQGemmTileRows = 4;

// Blocks per chunk when `blocks` 32-blocks of K are cut into as few chunks of at most `most`
// blocks as can be, all but the last of one size (at least 1).
inline int64_t qgemm_even_chunk(int64_t blocks, int64_t most) {
  const int64_t pieces = (blocks + most - 1) / most;
  return pieces > 0 ? (blocks + pieces - 1) / pieces : 1;
}

// y = x·Wᵀ (+ bias) for p, from activations already quantized into a (run_qmatmul's step one).
// Rewrites a in place (codes interleaved per 4-row tile): the caller drops it.
void qgemm_avx512vnni(const ops::MatmulParams& p, QActs& a, ThreadPool& pool);

// The work split of every GEMM kernel: interleave(m0, rows) for each kQGemmTileRows-row tile of
// a, then panel(n0, m0, m1) for each block of panel_n outputs (a multiple of 16, so n0 starts a
// stored panel) and part of the rows (rows are split only when there are too few output blocks to
// keep every thread busy).
// Stops at a set cancel token (matmul() throws once the variant returns).
void qgemm_schedule(const ops::MatmulParams& p, ThreadPool& pool, int64_t panel_n,
                    const std::function<void(int64_t m0, int rows)>& interleave,
                    const std::function<void(int64_t n0, int64_t m0, int64_t m1)>& panel);

// Rows [m0, m0 + rows) of a (m0 a multiple of kQGemmTileRows, rows <= kQGemmTileRows)
// rewritten in place into the tile layout the GEMM kernels read: for each block and 4-k step the
// rows' 4 codes side by side (q[(8·b + j)·4·rows + 4i + t] = code k = 32b + 4j + t of row i),
// each byte XORed with flip (0x80 makes them unsigned), and the block scales side by side
// (d[b·rows + i]). One tile's activations are then one sequential stream.
void interleave_tile_rows(QActs& a, int64_t m0, int rows, uint8_t flip);

}  // namespace qvl::cpu
