// The Int8Dot GEMM path (q8, q4 weights, many activation rows): the matvec kernels of
// matmul_q_*.cpp dot one weight row with one activation row across K and reduce horizontally, so
// every vpdpbusd is followed by a convert and an FMA of its own, which holds them to the f32 rate.
// The GEMM instead puts 16 outputs in the lanes of a register: the weights of a panel of outputs
// are repacked (per thread, per call) so that one 64-byte vector holds 4 consecutive k of 16
// outputs, and 4 activation codes broadcast to every lane feed 16 outputs at once. A 32-block then
// costs 8 vpdpbusd per 16 outputs and row, and one convert, multiply and FMA for its scales.
//
// Repacked, the weights are signed (q8: the stored byte − 128; q4: code − zero point, −15..15) and
// the activation codes unsigned (the int8 code + 128), the operand order vpdpbusd takes; the +128
// of the activations becomes −128·Σ w per (output, block), computed once at repack. The integer
// block dots are the reference's exactly (with its zero-point term folded in as integers), so only
// the f32 rounding of the scale products and their sums differs, as for the matvec kernels.
//
// Per block and 16 outputs a row costs 8 vpdpbusd and 3 f32 operations (convert, scale, FMA) on
// the same two ports, so the bound is ~73% of the vpdpbusd peak; one Sapphire Rapids thread
// measures 40-49% (M = 512, the 2B widths, quiet machine). An AMX-int8 prototype (TDPBUSD on
// 32 x 32 tiles, one K = 32 step per block, the tiles stored and scaled with AVX-512 after each)
// measured only 2-10% faster, bound by that per-block scaling: not kept.
#pragma once
#include <cstdint>

#include "backends/cpu/matmul_q.h"

namespace qvl::cpu {

// Rows from which the AVX512-VNNI variant runs the GEMM rather than its matvec tiles. Measured
// with bench_matmul on the 2B model's widths (Sapphire Rapids VM, q8): with the weights cached,
// one thread, the GEMM is 1.5x faster at M = 6 and 1.8-2.4x at 8-12; streaming the weights from
// DRAM on two threads the two are within the noise up to M = 8 (both read each weight once);
// from M = 16 the GEMM is 1.5-2.9x the dense exact kernel's speed while the matvec tiles are not
// faster than it.
constexpr int64_t kQGemmMinRows = 8;

// y = x·Wᵀ (+ bias) for p, from activations already quantized into a (run_qmatmul's step one).
// Rewrites a in place (codes made unsigned and interleaved per 4-row tile): the caller drops it.
void qgemm_avx512vnni(const ops::MatmulParams& p, QActs& a, ThreadPool& pool);

}  // namespace qvl::cpu
