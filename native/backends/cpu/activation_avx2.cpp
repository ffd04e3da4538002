// Activations, 8 lanes. The arguments that need more than fp32 (1.702·x, the gelu_tanh cubic)
// are carried as float pairs built with FMA (exact products), so exp() sees them to ~2^-45.
#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/activation.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

QVL_TARGET_AVX2 inline __m256 clamp_abs(__m256 x, float lim) {  // NaN stays
  return _mm256_min_ps(_mm256_set1_ps(lim), _mm256_max_ps(_mm256_set1_ps(-lim), x));
}

// x / (1 + e^-(zh + zl))
QVL_TARGET_AVX2 inline __m256 x_sigmoid(__m256 x, __m256 zh, __m256 zl) {
  const __m256 neg = _mm256_set1_ps(-0.0f);
  const __m256 e = vm::exp_avx2(_mm256_xor_ps(zh, neg), _mm256_xor_ps(zl, neg));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

QVL_TARGET_AVX2 inline __m256 silu(__m256 x) { return x_sigmoid(x, x, _mm256_setzero_ps()); }

QVL_TARGET_AVX2 inline __m256 quick_gelu(__m256 x) {
  const __m256 c = clamp_abs(x, 100.0f);
  const __m256 kh = _mm256_set1_ps(vm::hi_part(vm::kQuickGelu)), kl = _mm256_set1_ps(vm::lo_part(vm::kQuickGelu));
  const __m256 zh = _mm256_mul_ps(c, kh);
  const __m256 zl = _mm256_fmadd_ps(c, kl, _mm256_fmsub_ps(c, kh, zh));
  return x_sigmoid(x, zh, zl);
}

// z = c·(k1 + k3·c²) as a float pair, c = x clamped to ±20 (past that the sigmoid is 0 or 1).
QVL_TARGET_AVX2 inline __m256 gelu_tanh(__m256 x) {
  const __m256 c = clamp_abs(x, 20.0f);
  const __m256 k1h = _mm256_set1_ps(vm::hi_part(vm::kTanhK1)), k1l = _mm256_set1_ps(vm::lo_part(vm::kTanhK1));
  const __m256 k3h = _mm256_set1_ps(vm::hi_part(vm::kTanhK3)), k3l = _mm256_set1_ps(vm::lo_part(vm::kTanhK3));
  const __m256 c2h = _mm256_mul_ps(c, c), c2l = _mm256_fmsub_ps(c, c, c2h);
  const __m256 t = _mm256_mul_ps(k3h, c2h);
  const __m256 tl = _mm256_fmadd_ps(k3h, c2l, _mm256_fmadd_ps(k3l, c2h, _mm256_fmsub_ps(k3h, c2h, t)));
  // k1 + t, both positive: exact sum of the larger and smaller (Fast2Sum).
  const __m256 a = _mm256_max_ps(k1h, t), b = _mm256_min_ps(k1h, t);
  const __m256 w = _mm256_add_ps(a, b);
  const __m256 wl = _mm256_add_ps(_mm256_sub_ps(b, _mm256_sub_ps(w, a)), _mm256_add_ps(k1l, tl));
  const __m256 zh = _mm256_mul_ps(c, w);
  const __m256 zl = _mm256_fmadd_ps(c, wl, _mm256_fmsub_ps(c, w, zh));
  return x_sigmoid(x, zh, zl);
}

QVL_TARGET_AVX2 inline __m256 gelu_erf(__m256 x) {
  const __m256 q = vm::erfc_abs_avx2(x);  // erfc(|x|/√2); 1 + erf(x/√2) = 2 - q for x >= 0
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 e = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), q), q, neg);
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), e);
}

template <ops::ActKind K>
QVL_TARGET_AVX2 inline __m256 act(__m256 x, __m256 up) {
  if constexpr (K == ops::ActKind::GeluErf) return gelu_erf(x);
  if constexpr (K == ops::ActKind::GeluTanh) return gelu_tanh(x);
  if constexpr (K == ops::ActKind::QuickGelu) return quick_gelu(x);
  if constexpr (K == ops::ActKind::Silu) return silu(x);
  if constexpr (K == ops::ActKind::SwiGlu) return _mm256_mul_ps(silu(x), up);
  return x;
}

template <ops::ActKind K>
QVL_TARGET_AVX2 void row(const float* x, const float* up, float* out, int64_t n) {
  constexpr bool gated = K == ops::ActKind::SwiGlu;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 u = gated ? _mm256_loadu_ps(up + i) : _mm256_setzero_ps();
    _mm256_storeu_ps(out + i, act<K>(_mm256_loadu_ps(x + i), u));
  }
  if (i < n) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 u = gated ? _mm256_maskload_ps(up + i, m) : _mm256_setzero_ps();
    _mm256_maskstore_ps(out + i, m, act<K>(_mm256_maskload_ps(x + i, m), u));
  }
}

using RowFn = void (*)(const float*, const float*, float*, int64_t);

RowFn row_for(ops::ActKind kind) {
  switch (kind) {
    case ops::ActKind::GeluErf: return &row<ops::ActKind::GeluErf>;
    case ops::ActKind::GeluTanh: return &row<ops::ActKind::GeluTanh>;
    case ops::ActKind::QuickGelu: return &row<ops::ActKind::QuickGelu>;
    case ops::ActKind::Silu: return &row<ops::ActKind::Silu>;
    case ops::ActKind::SwiGlu: return &row<ops::ActKind::SwiGlu>;
  }
  return nullptr;
}

}  // namespace

void activation_avx2(const ops::ActivationParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const RowFn fn = row_for(p.kind);
  const bool gated = p.kind == ops::ActKind::SwiGlu;
  parallel_elems(pool, p.rows, p.dim, kGrain, [&](int64_t r, int64_t c0, int64_t c1) {
    fn(p.x + r * p.ldx + c0, gated ? p.up + r * p.ldu + c0 : nullptr, p.out + r * p.ldo + c0, c1 - c0);
  });
}

}  // namespace qvl::cpu
