// The group-quantized packer (models/quant_pack.h), the door AWQ/GPTQ converters use: random
// logical codes packed and read back through the format's dequantize_row must give exactly
// (q − z)·s (q4) and q·s (q8) for every element, on groups 32 and 128 and rows with an odd number
// of 32-blocks (the q4 layout's half pair); every malformed input is refused with E_MODEL_FORMAT.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"
#include "core/weight_quant.h"
#include "models/quant_pack.h"
#include "tests/parity.h"
#include "tests/parity_q_panels.h"

namespace qvl::parity {

namespace {

using models::GroupQuantized;

GroupQuantized random_codes(WeightFormat f, int64_t out, int64_t in, int64_t group, Rng& rng) {
  GroupQuantized g;
  g.format = f;
  g.out = out, g.in = in, g.group = group;
  g.q.resize(static_cast<size_t>(out * in));
  for (auto& v : g.q) v = static_cast<uint8_t>(f == WeightFormat::Q4 ? rng.range(0, 15) : rng.range(0, 255));
  g.scales.resize(static_cast<size_t>(out * (in / group)));
  // Scales as an f16 checkpoint has them (exactly f16 values: stored as they are), every seventh
  // one an f16 subnormal (exact, kept; the kernels widen them exactly).
  for (size_t i = 0; i < g.scales.size(); ++i) {
    const float v = i % 7 == 3 ? rng.uniform(-6e-5f, 6e-5f) : rng.uniform(-0.05f, 0.05f);
    g.scales[i] = f16_to_f32(f32_to_f16(v));
  }
  if (f == WeightFormat::Q4) {
    g.zeros.resize(g.scales.size());
    for (auto& z : g.zeros) z = static_cast<uint8_t>(rng.range(0, 15));
  }
  return g;
}

// f32 scales (as a bf16/f32 checkpoint may have them): stored rounded to the nearest f16, which
// the expected values then use.
Result roundtrip_case(WeightFormat f, int64_t out, int64_t in, int64_t group, Rng& rng, ThreadPool& pool,
                      bool f32_scales = false) {
  Result r;
  r.op = "quant_pack";
  r.variant = "pack";
  r.device = "cpu";
  r.format = weight_format_name(f);
  r.shape = "out=" + std::to_string(out) + " in=" + std::to_string(in) + " group=" + std::to_string(group) +
            (f32_scales ? " f32 scales" : "");
  GroupQuantized g = random_codes(f, out, in, group, rng);
  if (f32_scales)
    for (auto& s : g.scales) s = rng.uniform(-0.05f, 0.05f);
  const std::vector<float> given = g.scales;
  for (auto& s : g.scales) s = f16_to_f32(f32_to_f16(s));  // the expected values' scales
  GroupQuantized packed = g;
  packed.scales = given;
  const models::ConvertedWeight c = models::pack_group_quantized(packed, pool);
  const WeightFormatTraits& t = weight_format_traits(f);
  std::vector<float> row(static_cast<size_t>(in));
  for (int64_t o = 0; o < out && r.passed; ++o) {
    // Whole row, then a block-aligned piece starting at an odd block (the dequantizer's k0).
    t.dequantize_row(c.ref, o, 0, in, row.data());
    for (int64_t k = 0; k < in && r.passed; ++k) {
      const int64_t gi = o * (in / group) + k / group;
      const int q = f == WeightFormat::Q4 ? g.q[o * in + k] - g.zeros[gi] : static_cast<int8_t>(g.q[o * in + k]);
      const float want = static_cast<float>(q) * g.scales[gi];
      if (row[k] != want) {
        r.passed = false;
        r.note = "element [" + std::to_string(o) + "," + std::to_string(k) + "] = " + std::to_string(row[k]) +
                 ", expected " + std::to_string(want);
      }
    }
    if (in > 64 && r.passed) {
      std::vector<float> piece(32);
      t.dequantize_row(c.ref, o, 32, 32, piece.data());
      for (int64_t k = 0; k < 32; ++k) r.passed = r.passed && piece[k] == row[32 + k];
      if (!r.passed) r.note = "dequantize_row from k0 = 32 differs from the whole row";
    }
  }
  return r;
}

template <class Mutate>
Result refused(const std::string& what, WeightFormat f, Mutate&& mutate, Rng& rng, ThreadPool& pool) {
  GroupQuantized g = random_codes(f, 3, 64, 32, rng);
  mutate(g);
  Result r = expect_rejected("quant_pack", what, [&] { models::pack_group_quantized(g, pool); }, ErrorCode::ModelFormat);
  r.format = weight_format_name(f);
  return r;
}

Result policy_case(const std::string& what, bool ok, const std::string& note) {
  Result r;
  r.op = "quant_pack", r.variant = "f16 scales", r.device = "cpu", r.shape = what;
  r.passed = ok;
  if (!ok) r.note = note;
  return r;
}

// The f16 scale policy of core/weight_quant.h, on hand-made groups: the quantizers never store a
// subnormal scale for a non-zero group (raised to 2^-14, every element within 2^-15), store 0 for
// an all-zero group, report a scale past 65504, and compute their codes against the stored scale
// (each element within half a step of it); q_scale_from_f32 keeps exact f16 values (subnormals
// included), rounds the normal range and refuses the rest; the q4 zero points of an odd number
// of groups end in a 0 nibble.
std::vector<Result> scale_policy_cases(Rng& rng) {
  std::vector<Result> out;
  const int64_t G = 32, n = 4 * G;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) x[k] = rng.normal() * (k < G ? 1e-6f : k < 2 * G ? 0.02f : k < 3 * G ? 0.0f : 3.0f);
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    std::vector<uint8_t> data(static_cast<size_t>(n)), zeros(2);
    uint16_t sc[4];
    WeightRef w;
    w.format = f, w.data = data.data(), w.ld = n, w.scales = sc, w.zeros = zeros.data(), w.group = G, w.out = 1, w.in = n;
    const int64_t bad = f == WeightFormat::Q8 ? q8_quantize(x.data(), n, G, data.data(), sc)
                                              : q4_quantize(x.data(), n, G, data.data(), sc, zeros.data());
    const std::string name = weight_format_name(f);
    out.push_back(policy_case(name + " quantize: no overflow on normal weights", bad < 0, "reported group " + std::to_string(bad)));
    out.push_back(policy_case(name + " tiny group: scale raised to 2^-14", sc[0] == 0x0400, "scale bits " + std::to_string(sc[0])));
    out.push_back(policy_case(name + " all-zero group: scale 0", sc[2] == 0, "scale bits " + std::to_string(sc[2])));
    std::vector<uint8_t> pcodes(data), pzeros(zeros);  // the row in its panel, as stored
    std::vector<uint16_t> pscales(sc, sc + 4);
    to_panels(f, 1, n, G, pcodes, pscales, pzeros);
    w.data = pcodes.data(), w.scales = pscales.data(), w.zeros = pzeros.data();
    std::vector<float> back(static_cast<size_t>(n));
    weight_format_traits(f).dequantize_row(w, 0, 0, n, back.data());
    bool ok = true;
    std::string note;
    for (int64_t k = 0; k < n; ++k) {
      const float s = q_scale(sc[k / G]);
      if (f == WeightFormat::Q8) {  // exactly the stored scale's nearest code
        const float inv = s > 0.0f ? 1.0f / s : 0.0f;
        const float want = std::min(127.0f, std::max(-127.0f, std::nearbyint(x[k] * inv))) * s;
        if (back[k] != want) ok = false, note = "element " + std::to_string(k) + " = " + std::to_string(back[k]) + ", not " + std::to_string(want);
      } else if (std::fabs(back[k] - x[k]) > s * 1.001f) {  // within a step (half, but the rounded zero point may clamp an end)
        ok = false, note = "element " + std::to_string(k) + " off by " + std::to_string(back[k] - x[k]);
      }
    }
    out.push_back(policy_case(name + " codes against the stored scale", ok, note));
    std::vector<float> big(x);
    for (int64_t k = 3 * G; k < n; ++k) big[k] = (k % 2 ? 1.0f : -1.0f) * 1e7f;  // q8 s = 78740, q4 s = 1.3e6
    const int64_t over = f == WeightFormat::Q8 ? q8_quantize(big.data(), n, G, data.data(), sc)
                                               : q4_quantize(big.data(), n, G, data.data(), sc, zeros.data());
    out.push_back(policy_case(name + " scale past 65504: reported", over == 3, "reported " + std::to_string(over)));
  }
  uint16_t h = 0;
  out.push_back(policy_case("from f32: exact subnormal kept", q_scale_from_f32(0x1p-20f, &h) && h == 0x0010, "bits " + std::to_string(h)));
  out.push_back(policy_case("from f32: normal rounded", q_scale_from_f32(0.1f, &h) && h == f32_to_f16(0.1f), "bits " + std::to_string(h)));
  out.push_back(policy_case("from f32: inexact subnormal refused", !q_scale_from_f32(1e-7f, &h), ""));
  out.push_back(policy_case("from f32: 70000 refused", !q_scale_from_f32(70000.0f, &h), ""));
  out.push_back(policy_case("from f32: NaN refused", !q_scale_from_f32(std::nanf(""), &h), ""));
  out.push_back(policy_case("from f32: -65504 kept", q_scale_from_f32(-65504.0f, &h) && h == 0xfbff, "bits " + std::to_string(h)));
  const uint8_t z[3] = {7, 15, 9};
  uint8_t packed[2] = {0xff, 0xff};
  const bool zok = q4_pack_zeros(z, 3, packed) && packed[0] == 0xf7 && packed[1] == 0x09 && q4_zero(packed, 2) == 9;
  out.push_back(policy_case("q4 zero points: three groups, the last byte's high nibble 0", zok,
                            "bytes " + std::to_string(packed[0]) + " " + std::to_string(packed[1])));
  return out;
}

}  // namespace

std::vector<Result> parity_quant_pack(uint64_t seed) {
  Rng rng(seed ^ 0x717061636bull);
  ThreadPool pool(3);
  std::vector<Result> out;
  for (const WeightFormat f : {WeightFormat::Q8, WeightFormat::Q4}) {
    out.push_back(roundtrip_case(f, 5, 32, 32, rng, pool));
    out.push_back(roundtrip_case(f, 7, 96, 32, rng, pool));    // three blocks: a pair and a half pair
    out.push_back(roundtrip_case(f, 3, 384, 128, rng, pool));  // group 128, three groups
    out.push_back(roundtrip_case(f, 33, 160, 32, rng, pool));
    out.push_back(roundtrip_case(f, 2, 640, 128, rng, pool));  // 20 blocks
    out.push_back(roundtrip_case(f, 9, 160, 32, rng, pool));   // five groups: a lone zero-point nibble per row
    out.push_back(roundtrip_case(f, 4, 192, 64, rng, pool, true));
  }
  for (Result& r : scale_policy_cases(rng)) out.push_back(std::move(r));
  const WeightFormat q4 = WeightFormat::Q4, q8 = WeightFormat::Q8;
  out.push_back(refused("q4 code 16", q4, [](GroupQuantized& g) { g.q[70] = 16; }, rng, pool));
  out.push_back(refused("q4 zero point 16", q4, [](GroupQuantized& g) { g.zeros[5] = 16; }, rng, pool));
  out.push_back(refused("NaN scale", q4, [](GroupQuantized& g) { g.scales[1] = std::nanf(""); }, rng, pool));
  out.push_back(refused("infinite scale", q8, [](GroupQuantized& g) { g.scales[4] = INFINITY; }, rng, pool));
  out.push_back(refused("scale past f16 (70000)", q8, [](GroupQuantized& g) { g.scales[2] = 70000.0f; }, rng, pool));
  out.push_back(refused("scale f16 cannot hold (1e-7)", q4, [](GroupQuantized& g) { g.scales[3] = 1e-7f; }, rng, pool));
  out.push_back(refused("group 48", q4, [](GroupQuantized& g) { g.group = 48; }, rng, pool));
  out.push_back(refused("group 0", q8, [](GroupQuantized& g) { g.group = 0; }, rng, pool));
  out.push_back(refused("group not dividing in", q8, [](GroupQuantized& g) { g.group = 128; }, rng, pool));
  out.push_back(refused("too few codes", q4, [](GroupQuantized& g) { g.q.pop_back(); }, rng, pool));
  out.push_back(refused("too many scales", q8, [](GroupQuantized& g) { g.scales.push_back(1.0f); }, rng, pool));
  out.push_back(refused("missing zero points", q4, [](GroupQuantized& g) { g.zeros.clear(); }, rng, pool));
  out.push_back(refused("q8 with zero points", q8, [](GroupQuantized& g) { g.zeros.assign(g.scales.size(), 8); }, rng, pool));
  out.push_back(refused("dense format", q8, [](GroupQuantized& g) { g.format = WeightFormat::BF16; }, rng, pool));
  out.push_back(refused("zero rows", q8, [](GroupQuantized& g) { g.out = 0; }, rng, pool));
  out.push_back(refused("negative in", q4, [](GroupQuantized& g) { g.in = -64; }, rng, pool));
  return out;
}

}  // namespace qvl::parity
