// Compute-peak probes for `npm run bench`: the rate one instruction reaches on every pool thread
// at once with its operands in registers (or tiles), nothing loaded, so the kernel table can
// state each variant's GFLOP/s as a fraction of what its ISA can do on this machine, measured in
// the same process (VMs and turbo make datasheet peaks meaningless).
#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "tests/bench.h"

namespace qvl::bench {

namespace {

// Keeps the accumulators alive (GCC 12 warns inside _mm512_reduce_add_ps).
QVL_TARGET_AVX512 void keep(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  volatile float sink = t[0] + t[15];
  (void)sink;
}
QVL_TARGET_AVX2 void keep(__m256 v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  volatile float sink = t[0] + t[7];
  (void)sink;
}
void keep(__m128 v) {
  alignas(16) float t[4];
  _mm_store_ps(t, v);
  volatile float sink = t[0] + t[3];
  (void)sink;
}

// 16 independent accumulator chains hide the FMA latency (4 cycles x 2 ports = 8 in flight).
QVL_TARGET_AVX512 double fma32_flops(int64_t rounds) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.0001f);
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(rounds) * 16 * 16 * 2;
}

QVL_TARGET_AVX512BF16 double dpbf16_flops(int64_t rounds) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x3f803f80));  // (1.0, 1.0)
  const __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x33803380));  // tiny: no overflow
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(rounds) * 16 * 16 * 2 * 2;  // 16 lanes x 2 products x 2 flops
}

// int8 products (VNNI): 16 lanes × 4 u8·s8 products, counted as 2 ops each like a flop, so the
// Int8Dot kernels' GFLOP/s (of the f32 product they stand for) compare with it directly.
QVL_TARGET_AVX512VNNI double dpbusd_ops(int64_t rounds) {
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(-1);  // acc drifts down by 4 a round: no overflow
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  __m512i s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_epi32(s, acc[i]);
  keep(_mm512_maskz_cvtepi32_ps(static_cast<__mmask16>(0xffff), s));  // maskz: GCC 12 warns on the plain form
  return static_cast<double>(rounds) * 16 * 16 * 4 * 2;
}

// The same 16 chains on ymm (AVX2 + FMA: the avx2 matmul variants).
QVL_TARGET_AVX2 double fma32_avx2_flops(int64_t rounds) {
  __m256 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.0001f);
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm256_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(rounds) * 16 * 8 * 2;
}

// AVX2's int8 dot as the q_avx2 kernels' q8 step does it (vpmaddubsw, vpmaddwd by ones, vpaddd):
// 8 lanes × 4 u8·s8 products per triple, counted like dpbusd. q4 sums 8 vpmaddubsw in int16
// before one vpmaddwd, so its kernel can pass this rate. The accumulator is also the s8 operand,
// or the loop-invariant product would be hoisted out of the loop.
QVL_TARGET_AVX2 double dpbusd_avx2_ops(int64_t rounds) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(a, acc[i]), ones));
  }
  __m256i s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_epi32(s, acc[i]);
  keep(_mm256_cvtepi32_ps(s));
  return static_cast<double>(rounds) * 12 * 8 * 4 * 2;
}

// x86-64's baseline (SSE2, no FMA: what the generic variants compile to): a multiply and an add.
double muladd32_sse2_flops(int64_t rounds) {
  __m128 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm_set1_ps(0.001f * static_cast<float>(i));
  const __m128 a = _mm_set1_ps(0.999f), b = _mm_set1_ps(0.0001f);
  for (int64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < 16; ++i) acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], a), b);
  }
  __m128 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm_add_ps(s, acc[i]);
  keep(s);
  return static_cast<double>(rounds) * 16 * 4 * 2;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles resident: four accumulators fed by two x and two weight tiles loaded once.
QVL_TARGET_AMX double amx_bf16_flops(int64_t rounds) {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  alignas(64) static const uint16_t ones[16 * 32] = {};  // zeros: the rate does not depend on values
  _tile_loadconfig(&cfg);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ones, 64);
  _tile_loadd(5, ones, 64);
  _tile_loadd(6, ones, 64);
  _tile_loadd(7, ones, 64);
  for (int64_t r = 0; r < rounds; ++r) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float out[16 * 16];
  _tile_stored(0, out, 64);
  _tile_release();
  volatile float sink = out[0];
  (void)sink;
  return static_cast<double>(rounds) * 4 * 16 * 16 * 32 * 2;
}

}  // namespace

double peak_gflops(const std::string& kind, int64_t rounds) {
  QVL_CHECK(rounds >= 1 && rounds <= (int64_t{1} << 32), Input, "benchPeak: rounds must be in [1, 2^32]");
  double (*probe)(int64_t) = nullptr;
  if (kind == "fma32") {
    QVL_CHECK(isa_available(Isa::Avx512), Unsupported, "benchPeak: fma32 probes AVX-512, which this CPU lacks");
    probe = fma32_flops;
  } else if (kind == "fma32-avx2") {
    QVL_CHECK(isa_available(Isa::Avx2), Unsupported, "benchPeak: this CPU has no AVX2 + FMA");
    probe = fma32_avx2_flops;
  } else if (kind == "dpbusd-avx2") {
    QVL_CHECK(isa_available(Isa::Avx2), Unsupported, "benchPeak: this CPU has no AVX2");
    probe = dpbusd_avx2_ops;
  } else if (kind == "muladd32-sse2") {
    probe = muladd32_sse2_flops;
  } else if (kind == "dpbf16") {
    QVL_CHECK(isa_available(Isa::Avx512Bf16), Unsupported, "benchPeak: this CPU has no AVX512-BF16");
    probe = dpbf16_flops;
  } else if (kind == "dpbusd") {
    QVL_CHECK(isa_available(Isa::Avx512Vnni), Unsupported, "benchPeak: this CPU has no AVX512-VNNI");
    probe = dpbusd_ops;
  } else if (kind == "amx-bf16") {
    QVL_CHECK(isa_available(Isa::Amx), Unsupported, "benchPeak: this CPU (or OS) runs no AMX");
    probe = amx_bf16_flops;
  } else {
    fail(ErrorCode::Input, "benchPeak: kind must be fma32, fma32-avx2, dpbusd-avx2, muladd32-sse2, dpbf16, dpbusd or amx-bf16, got '" + kind + "'");
  }
  const std::shared_ptr<ThreadPool> pool = default_pool();
  // Warm-up on every thread: clocks and AVX-512 / AMX power states are per core.
  pool->run_on_all([&](int, int) { probe(rounds / 16 + 1); });
  std::atomic<uint64_t> flops{0};
  const auto t0 = std::chrono::steady_clock::now();
  // One probe on each thread: handed out as parallel_for chunks, both could go to the calling
  // thread while a worker still woke from sleep, and the "peak" was one core's (2 Sapphire Rapids
  // threads: fma32 207 GFLOP/s against 394 with one probe per thread).
  pool->run_on_all([&](int, int) { flops += static_cast<uint64_t>(probe(rounds)); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(flops.load()) / s / 1e9;
}

}  // namespace qvl::bench
