// The group-quantized packer (models/quant_pack.h), the door AWQ/GPTQ converters use: random
// logical codes packed and read back through the format's dequantize_row must give exactly
// (q − z)·s (q4) and q·s (q8) for every element, on groups 32 and 128 and rows with an odd number
// of 32-blocks (the q4 layout's half pair); every malformed input is refused with E_MODEL_FORMAT.
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"
#include "core/weight_quant.h"
#include "models/quant_pack.h"
#include "tests/parity.h"

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
  for (auto& s : g.scales) s = rng.uniform(-0.05f, 0.05f);
  if (f == WeightFormat::Q4) {
    g.zeros.resize(g.scales.size());
    for (auto& z : g.zeros) z = static_cast<uint8_t>(rng.range(0, 15));
  }
  return g;
}

Result roundtrip_case(WeightFormat f, int64_t out, int64_t in, int64_t group, Rng& rng, ThreadPool& pool) {
  Result r;
  r.op = "quant_pack";
  r.variant = "pack";
  r.device = "cpu";
  r.format = weight_format_name(f);
  r.shape = "out=" + std::to_string(out) + " in=" + std::to_string(in) + " group=" + std::to_string(group);
  const GroupQuantized g = random_codes(f, out, in, group, rng);
  const models::ConvertedWeight c = models::pack_group_quantized(g, pool);
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
  }
  const WeightFormat q4 = WeightFormat::Q4, q8 = WeightFormat::Q8;
  out.push_back(refused("q4 code 16", q4, [](GroupQuantized& g) { g.q[70] = 16; }, rng, pool));
  out.push_back(refused("q4 zero point 16", q4, [](GroupQuantized& g) { g.zeros[5] = 16; }, rng, pool));
  out.push_back(refused("NaN scale", q4, [](GroupQuantized& g) { g.scales[1] = std::nanf(""); }, rng, pool));
  out.push_back(refused("infinite scale", q8, [](GroupQuantized& g) { g.scales[4] = INFINITY; }, rng, pool));
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
