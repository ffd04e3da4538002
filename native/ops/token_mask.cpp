#include "ops/token_mask.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "ops/backends.h"

namespace qvl::ops {

VocabIndex::VocabIndex(const uint8_t* bytes, int64_t n_bytes, const int32_t* offsets, int64_t vocab) : vocab_(vocab) {
  QVL_CHECK(vocab >= 1 && vocab <= (int64_t{1} << 31) - 1, Input, "vocabulary: size must be in [1, 2^31)");
  QVL_CHECK(n_bytes >= 0 && n_bytes < (int64_t{1} << 31) && (bytes || n_bytes == 0) && offsets, Input, "vocabulary: bad buffers");
  QVL_CHECK(offsets[0] == 0 && offsets[vocab] == n_bytes, Input, "vocabulary: offsets must start at 0 and end at the byte count");
  for (int64_t t = 0; t < vocab; ++t) {
    const int64_t len = static_cast<int64_t>(offsets[t + 1]) - offsets[t];
    QVL_CHECK(len >= 0, Input, "vocabulary: offsets decrease at token " + std::to_string(t));
    QVL_CHECK(len <= 0xFFFF, Unsupported, "vocabulary: token " + std::to_string(t) + " is longer than 65535 bytes");
    max_len_ = std::max(max_len_, static_cast<size_t>(len));
  }
  bytes_.assign(bytes, bytes + n_bytes);
  offsets_.assign(offsets, offsets + vocab + 1);

  // Text tokens sorted by their bytes: a prefix before its extensions, equal ones side by side, so
  // the trie comes out in preorder with each node's tokens contiguous.
  std::vector<int32_t> ids;
  for (int32_t t = 0; t < vocab; ++t)
    if (offsets_[static_cast<size_t>(t) + 1] > offsets_[static_cast<size_t>(t)]) ids.push_back(t);
  auto view = [&](int32_t t) {
    size_t n;
    const uint8_t* p = token(t, &n);
    return std::make_pair(p, n);
  };
  std::sort(ids.begin(), ids.end(), [&](int32_t x, int32_t y) {
    auto [px, nx] = view(x);
    auto [py, ny] = view(y);
    const int c = std::memcmp(px, py, std::min(nx, ny));
    return c != 0 ? c < 0 : nx != ny ? nx < ny : x < y;
  });
  std::vector<int32_t> path;  // node index per depth - 1
  const uint8_t* prev = nullptr;
  size_t prev_n = 0;
  for (int32_t t : ids) {
    auto [p, n] = view(t);
    size_t common = 0;
    while (common < std::min(n, prev_n) && p[common] == prev[common]) ++common;
    while (path.size() > common) {
      nodes_[static_cast<size_t>(path.back())].end = static_cast<int32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < n; ++d) {
      path.push_back(static_cast<int32_t>(nodes_.size()));
      nodes_.push_back({0, 0, 0, static_cast<uint16_t>(d + 1), p[d], static_cast<uint16_t>(d + 1)});
    }
    Node& at = nodes_[static_cast<size_t>(path.back())];
    if (at.tok_end == at.tok_begin) at.tok_begin = at.tok_end = static_cast<int32_t>(node_tokens_.size());
    node_tokens_.push_back(t);
    at.tok_end = static_cast<int32_t>(node_tokens_.size());
    prev = p, prev_n = n;
  }
  while (!path.empty()) {
    nodes_[static_cast<size_t>(path.back())].end = static_cast<int32_t>(nodes_.size());
    path.pop_back();
  }
  // Preorder: a node's children follow it, each subtree contiguous, so children are done first backwards.
  for (size_t i = nodes_.size(); i-- > 0;) {
    Node& nd = nodes_[i];
    for (size_t c = i + 1; c < static_cast<size_t>(nd.end); c = static_cast<size_t>(nodes_[c].end))
      nd.deepest = std::max(nd.deepest, nodes_[c].deepest);
  }
  const size_t words = static_cast<size_t>(mask_words(vocab));
  short_.assign(std::min(max_len_, kShort) + 1, std::vector<uint32_t>(words, 0u));
  for (int32_t t : ids) {
    size_t n;
    token(t, &n);
    if (n > kShort) {
      long_.emplace_back(t, n);
      continue;
    }
    mask_set(short_[n].data(), t);
  }
  for (size_t L = 1; L < short_.size(); ++L)
    for (size_t j = 0; j < words; ++j) short_[L][j] |= short_[L - 1][j];
}

void VocabIndex::keep_up_to(uint32_t* mask, size_t len) const {
  if (len >= max_len_) return;
  const std::vector<uint32_t>& keep = short_[std::min(len, short_.size() - 1)];
  std::vector<uint32_t> longer;  // long tokens of at most len bytes that the mask holds
  if (len > kShort) {
    for (const auto& [t, n] : long_)
      if (n <= len && mask_has(mask, t)) longer.push_back(static_cast<uint32_t>(t));
  }
  for (size_t j = 0; j < keep.size(); ++j) mask[j] &= keep[j];
  for (uint32_t t : longer) mask_set(mask, t);
}

MaskCache::MaskCache(std::shared_ptr<const grammar::Grammar> g, std::shared_ptr<const VocabIndex> v, size_t max_bytes)
    : grammar_(std::move(g)), vocab_(std::move(v)), max_bytes_(max_bytes) {
  QVL_CHECK(grammar_ && vocab_, Input, "grammar masks need a grammar and a vocabulary");
}

void MaskCache::make_room(size_t need) {
  // Bounded by dropping everything: states come and go with the documents generated, and a
  // dropped entry costs one walk to rebuild.
  if (bytes_ + need <= max_bytes_) return;
  states_.clear();
  positions_.clear();
  bytes_ = 0;
}

bool MaskCache::find_state(const int32_t* state, size_t n, uint32_t* mask) {
  const std::string key(reinterpret_cast<const char*>(state), n * sizeof(int32_t));
  std::shared_ptr<const std::vector<uint32_t>> hit;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(key);
    if (it == states_.end()) {
      ++stats_.state_misses;
      return false;
    }
    ++stats_.state_hits;
    hit = it->second;
  }
  std::copy(hit->begin(), hit->end(), mask);
  return true;
}

void MaskCache::put_state(const int32_t* state, size_t n, const uint32_t* mask) {
  std::string key(reinterpret_cast<const char*>(state), n * sizeof(int32_t));
  const size_t words = static_cast<size_t>(mask_words(vocab_->vocab()));
  auto m = std::make_shared<const std::vector<uint32_t>>(mask, mask + words);
  const size_t need = key.size() + words * 4 + 64;
  std::lock_guard<std::mutex> lock(mu_);
  make_room(need);
  if (states_.emplace(std::move(key), std::move(m)).second) bytes_ += need;
}

std::shared_ptr<const PositionMask> MaskCache::find_position(const int32_t* top, size_t n) {
  const std::string key(reinterpret_cast<const char*>(top), n * sizeof(int32_t));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = positions_.find(key);
  if (it == positions_.end()) {
    ++stats_.position_misses;
    return nullptr;
  }
  ++stats_.position_hits;
  return it->second;
}

void MaskCache::put_position(const int32_t* top, size_t n, std::shared_ptr<const PositionMask> m) {
  std::string key(reinterpret_cast<const char*>(top), n * sizeof(int32_t));
  const size_t need = m->bytes() + key.size() + 64;
  std::lock_guard<std::mutex> lock(mu_);
  make_room(need);
  if (positions_.emplace(std::move(key), std::move(m)).second) bytes_ += need;
}

MaskCache::Stats MaskCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.bytes = static_cast<int64_t>(bytes_);
  return s;
}

const OpFamily<TokenMaskFn>& token_mask_family() {
  static const OpFamily<TokenMaskFn> family("token_mask", QVL_BACKEND_VARIANTS(token_mask));
  return family;
}

void check_token_mask(const TokenMaskArgs& a) {
  QVL_CHECK(a.masks && a.mask, Input, "token mask: null grammar or output");
  QVL_CHECK(!a.cache || a.cache == a.masks, Input, "token mask: the cache belongs to another grammar");
  QVL_CHECK(a.state_len >= 0 && (a.state || a.state_len == 0), Input, "token mask: bad state buffer");
  const grammar::Grammar& g = a.masks->grammar();
  const int64_t E = static_cast<int64_t>(g.elems.size());
  for (int64_t i = 0; i < a.state_len;) {
    const int64_t len = a.state[i];
    QVL_CHECK(len >= 0 && i + 1 + len <= a.state_len, Input, "token mask: malformed state (stack at " + std::to_string(i) + ")");
    for (int64_t k = 0; k < len; ++k) {
      const int64_t e = a.state[i + 1 + k];
      QVL_CHECK(e >= 0 && e < E, Input, "token mask: state element " + std::to_string(e) + " is not in the grammar");
      const auto kind = g.elems[static_cast<size_t>(e)].kind;
      QVL_CHECK(k + 1 == len ? kind == grammar::Elem::Bytes : kind != grammar::Elem::End, Input,
                "token mask: state stack at " + std::to_string(i) + " is not normalized");
    }
    i += 1 + len;
  }
}

void token_mask(const TokenMaskArgs& a) {
  check_token_mask(a);
  token_mask_family().best().fn(a);
}

int64_t constrain_logits(float* logits, uint32_t* mask, int64_t vocab, const int32_t* end_ids, int64_t n_end, bool accepts) {
  for (int64_t i = 0; i < n_end; ++i) {
    QVL_CHECK(end_ids[i] >= 0 && end_ids[i] < vocab, Input, "structured output: end token " + std::to_string(end_ids[i]) + " is outside the vocabulary");
    // An end token is never text; it is allowed exactly when the text is complete.
    const uint32_t bit = uint32_t{1} << (end_ids[i] & 31);
    mask[end_ids[i] >> 5] = accepts ? (mask[end_ids[i] >> 5] | bit) : (mask[end_ids[i] >> 5] & ~bit);
  }
  int64_t kept = 0;
  for (int64_t t = 0; t < vocab; ++t) {
    if (mask_has(mask, t)) ++kept;
    else logits[t] = -INFINITY;
  }
  return kept;
}

bool advance_token(const MaskCache& m, std::vector<int32_t>& state, int32_t t) {
  if (t < 0 || t >= m.vocab().vocab()) return false;
  size_t n;
  const uint8_t* p = m.vocab().token(t, &n);
  if (n == 0) return false;
  return grammar::advance_bytes(m.grammar(), state, p, n);
}

}  // namespace qvl::ops
