// Token mask by a walk over the vocabulary's byte trie, with the grammar's caches (ops/token_mask.h).
#include <algorithm>
#include <memory>
#include <vector>

#include "ops/token_mask.h"

namespace qvl::cpu {

namespace {

using ops::PositionMask;
using ops::VocabIndex;

// Removes the empty stacks of a flat state; true when there was one.
bool drop_empty(std::vector<int32_t>& state) {
  size_t w = 0;
  bool dropped = false;
  for (size_t i = 0; i < state.size(); i += static_cast<size_t>(state[i]) + 1) {
    const size_t len = static_cast<size_t>(state[i]);
    if (len == 0) {
      dropped = true;
      continue;
    }
    if (w != i) std::copy(state.begin() + static_cast<std::ptrdiff_t>(i), state.begin() + static_cast<std::ptrdiff_t>(i + len + 1),
                          state.begin() + static_cast<std::ptrdiff_t>(w));
    w += len + 1;
  }
  state.resize(w);
  return dropped;
}

class Walker {
 public:
  explicit Walker(const ops::MaskCache& m) : v_(m.vocab()), ex_(m.grammar()), levels_(m.vocab().max_len() + 1) {}

  // Walks the trie nodes [begin, end), children of a node at `depth` (0: the root), from `start`,
  // marking every token whose bytes the state survives. With `open`, a walk from one stack top:
  // stacks that run empty (the top's rule has ended) are dropped, and the nodes where that happens
  // with bytes below them are listed.
  void walk(const std::vector<int32_t>& start, int32_t begin, int32_t end, size_t depth, uint32_t* mask,
            std::vector<int32_t>* open) {
    const std::vector<VocabIndex::Node>& nodes = v_.nodes();
    const std::vector<int32_t>& toks = v_.node_tokens();
    levels_[depth] = start;
    int32_t i = begin;
    while (i < end) {
      const VocabIndex::Node& nd = nodes[static_cast<size_t>(i)];
      const std::vector<int32_t>& parent = levels_[nd.depth - 1u];
      std::vector<int32_t>& cur = levels_[nd.depth];
      if (!ex_.advance(parent.data(), parent.size(), nd.byte, cur)) {
        i = nd.end;
        continue;
      }
      for (int32_t k = nd.tok_begin; k < nd.tok_end; ++k) ops::mask_set(mask, toks[static_cast<size_t>(k)]);
      if (open && drop_empty(cur)) {
        if (nd.end > i + 1) open->push_back(i);
        if (cur.empty()) {
          i = nd.end;
          continue;
        }
      }
      ++i;
    }
  }

  std::shared_ptr<const PositionMask> position(int32_t elem) {
    auto pm = std::make_shared<PositionMask>();
    std::vector<uint32_t> bits(static_cast<size_t>(ops::mask_words(v_.vocab())), 0u);
    walk({1, elem}, 0, static_cast<int32_t>(v_.nodes().size()), 0, bits.data(), &pm->open);
    int64_t count = 0;
    for (uint32_t w : bits) count += __builtin_popcount(w);
    if (count * 32 < v_.vocab()) {  // sparse: an id list is smaller than the bitset
      for (int64_t t = 0; t < v_.vocab(); ++t)
        if (ops::mask_has(bits.data(), t)) pm->ids.push_back(static_cast<int32_t>(t));
    } else {
      pm->bits.swap(bits);
    }
    return pm;
  }

  void expand(std::vector<int32_t>& stack, std::vector<int32_t>& out) { ex_.expand(stack, out); }

 private:
  const VocabIndex& v_;
  ops::grammar::Expander ex_;
  std::vector<std::vector<int32_t>> levels_;  // the state after each depth of the current path
};

}  // namespace

void token_mask_trie(const ops::TokenMaskArgs& a) {
  const VocabIndex& v = a.masks->vocab();
  const size_t words = static_cast<size_t>(ops::mask_words(v.vocab()));
  std::fill(a.mask, a.mask + words, 0u);
  const size_t n = static_cast<size_t>(a.state_len);
  if (a.cache && a.cache->find_state(a.state, n, a.mask)) return;
  Walker w(*a.masks);
  std::vector<int32_t> rest, below;
  for (size_t i = 0; i < n; i += static_cast<size_t>(a.state[i]) + 1) {
    const size_t len = static_cast<size_t>(a.state[i]);
    if (len == 0) continue;  // the complete sentence: end tokens are the caller's
    const int32_t top = a.state[i + len];
    std::shared_ptr<const PositionMask> pm = a.cache ? a.cache->find_position(top) : nullptr;
    if (!pm) {
      pm = w.position(top);
      if (a.cache) a.cache->put_position(top, pm);
    }
    if (!pm->bits.empty()) {
      for (size_t k = 0; k < words; ++k) a.mask[k] |= pm->bits[k];
    }
    for (int32_t t : pm->ids) ops::mask_set(a.mask, t);
    if (pm->open.empty() || len == 1) continue;  // nothing below the top: no text after its rule
    // Where the text goes on once the top's rule has ended: the stack below it, normalized.
    rest.assign(a.state + i + 1, a.state + i + len);
    below.clear();
    w.expand(rest, below);
    for (int32_t node : pm->open) {
      const VocabIndex::Node& nd = v.nodes()[static_cast<size_t>(node)];
      w.walk(below, node + 1, nd.end, nd.depth, a.mask, nullptr);
    }
  }
  if (a.cache) a.cache->put_state(a.state, n, a.mask);
}

}  // namespace qvl::cpu
