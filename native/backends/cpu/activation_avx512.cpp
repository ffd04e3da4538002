// Activations, 16 lanes. The arguments that need more than fp32 (1.702·x, the gelu_tanh cubic)
// are carried as float pairs built with FMA (exact products), so exp() sees them to ~2^-45.
#include "backends/cpu/rows_cpu.h"
#include "backends/cpu/vec_math.h"
#include "ops/activation.h"

namespace qvl::cpu {

namespace {

constexpr int64_t kGrain = 16384;

QVL_TARGET_AVX512 inline __m512 clamp_abs(__m512 x, float lim) {  // NaN stays
  return _mm512_min_ps(_mm512_set1_ps(lim), _mm512_max_ps(_mm512_set1_ps(-lim), x));
}

// x / (1 + e^-(zh + zl))
QVL_TARGET_AVX512 inline __m512 x_sigmoid(__m512 x, __m512 zh, __m512 zl) {
  const __m512 neg = _mm512_set1_ps(-0.0f);
  const __m512 e = vm::exp_avx512(_mm512_xor_ps(zh, neg), _mm512_xor_ps(zl, neg));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

QVL_TARGET_AVX512 inline __m512 silu(__m512 x) { return x_sigmoid(x, x, _mm512_setzero_ps()); }

QVL_TARGET_AVX512 inline __m512 quick_gelu(__m512 x) {
  const __m512 c = clamp_abs(x, 100.0f);
  const __m512 kh = _mm512_set1_ps(vm::hi_part(vm::kQuickGelu)), kl = _mm512_set1_ps(vm::lo_part(vm::kQuickGelu));
  const __m512 zh = _mm512_mul_ps(c, kh);
  const __m512 zl = _mm512_fmadd_ps(c, kl, _mm512_fmsub_ps(c, kh, zh));
  return x_sigmoid(x, zh, zl);
}

// z = c·(k1 + k3·c²) as a float pair, c = x clamped to ±20 (past that the sigmoid is 0 or 1).
QVL_TARGET_AVX512 inline __m512 gelu_tanh(__m512 x) {
  const __m512 c = clamp_abs(x, 20.0f);
  const __m512 k1h = _mm512_set1_ps(vm::hi_part(vm::kTanhK1)), k1l = _mm512_set1_ps(vm::lo_part(vm::kTanhK1));
  const __m512 k3h = _mm512_set1_ps(vm::hi_part(vm::kTanhK3)), k3l = _mm512_set1_ps(vm::lo_part(vm::kTanhK3));
  const __m512 c2h = _mm512_mul_ps(c, c), c2l = _mm512_fmsub_ps(c, c, c2h);
  const __m512 t = _mm512_mul_ps(k3h, c2h);
  const __m512 tl = _mm512_fmadd_ps(k3h, c2l, _mm512_fmadd_ps(k3l, c2h, _mm512_fmsub_ps(k3h, c2h, t)));
  // k1 + t, both positive: exact sum of the larger and smaller (Fast2Sum).
  const __m512 a = _mm512_max_ps(k1h, t), b = _mm512_min_ps(k1h, t);
  const __m512 w = _mm512_add_ps(a, b);
  const __m512 wl = _mm512_add_ps(_mm512_sub_ps(b, _mm512_sub_ps(w, a)), _mm512_add_ps(k1l, tl));
  const __m512 zh = _mm512_mul_ps(c, w);
  const __m512 zl = _mm512_fmadd_ps(c, wl, _mm512_fmsub_ps(c, w, zh));
  return x_sigmoid(x, zh, zl);
}

QVL_TARGET_AVX512 inline __m512 gelu_erf(__m512 x) {
  const __m512 q = vm::erfc_abs_avx512(x);  // erfc(|x|/√2); 1 + erf(x/√2) = 2 - q for x >= 0
  const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 e = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(2.0f), q), q);
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), e);
}

template <ops::ActKind K>
QVL_TARGET_AVX512 inline __m512 act(__m512 x, __m512 up) {
  if constexpr (K == ops::ActKind::GeluErf) return gelu_erf(x);
  if constexpr (K == ops::ActKind::GeluTanh) return gelu_tanh(x);
  if constexpr (K == ops::ActKind::QuickGelu) return quick_gelu(x);
  if constexpr (K == ops::ActKind::Silu) return silu(x);
  if constexpr (K == ops::ActKind::SwiGlu) return _mm512_mul_ps(silu(x), up);
  return x;
}

template <ops::ActKind K>
QVL_TARGET_AVX512 void row(const float* x, const float* up, float* out, int64_t n) {
  constexpr bool gated = K == ops::ActKind::SwiGlu;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 u = gated ? _mm512_loadu_ps(up + i) : _mm512_setzero_ps();
    _mm512_storeu_ps(out + i, act<K>(_mm512_loadu_ps(x + i), u));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 u = gated ? _mm512_maskz_loadu_ps(m, up + i) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(out + i, m, act<K>(_mm512_maskz_loadu_ps(m, x + i), u));
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

void activation_avx512(const ops::ActivationParams& p, const ExecContext& ctx) {
  ThreadPool& pool = ctx.pool();
  const RowFn fn = row_for(p.kind);
  const bool gated = p.kind == ops::ActKind::SwiGlu;
  parallel_elems(pool, p.rows, p.dim, kGrain, [&](int64_t r, int64_t c0, int64_t c1) {
    fn(p.x + r * p.ldx + c0, gated ? p.up + r * p.ldu + c0 : nullptr, p.out + r * p.ldo + c0, c1 - c0);
  });
}

}  // namespace qvl::cpu
