// Token mask by a walk over the vocabulary's byte trie, with the grammar's caches (ops/token_mask.h).
#include <algorithm>
#include <array>
#include <string>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "ops/token_mask.h"

namespace qvl::cpu {

namespace {

using ops::PositionMask;
using ops::VocabIndex;

// Removes the empty stacks of a flat state; true when there was one.
bool drop_empty(std::vector<int32_t>& state) {
  size_t w = 0;
  bool dropped = false;
  for (size_t i = 0; i < state.size();) {
    const size_t len = static_cast<size_t>(state[i]);  // read before the move below may overwrite it
    if (len == 0) {
      dropped = true;
    } else {
      std::copy(state.begin() + static_cast<std::ptrdiff_t>(i), state.begin() + static_cast<std::ptrdiff_t>(i + len + 1),
                state.begin() + static_cast<std::ptrdiff_t>(w));
      w += len + 1;
    }
    i += len + 1;
  }
  state.resize(w);
  return dropped;
}

// The states one mask computation meets, interned, with their transitions memoized: the trie has
// ~10^6 nodes at a 152k vocabulary but a walk meets few distinct states (inside a string, every
// ordinary byte leads back to the same one), so most nodes cost a table lookup, not an advance.
// In `local` mode stacks that run empty are dropped, and the transition says so.
class Dfa {
 public:
  Dfa(const ops::grammar::Grammar& g, bool local) : ex_(g), local_(local) {}

  int32_t intern(const std::vector<int32_t>& st) {
    std::string key(reinterpret_cast<const char*>(st.data()), st.size() * sizeof(int32_t));
    auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    QVL_CHECK(states_.size() < kMaxStates, Unsupported,
              "structured output: the grammar is too ambiguous (more than " + std::to_string(kMaxStates) + " parser states in one mask)");
    const int32_t id = static_cast<int32_t>(states_.size());
    ids_.emplace(std::move(key), id);
    states_.push_back(st);
    state_ints_ += st.size();
    next_.emplace_back();
    next_.back().fill(kUnknown);
    return id;
  }

  // The state after byte b from state s: (id + 1) << 1 | (a stack ran empty); id -1: dead.
  int32_t step(int32_t s, uint8_t b) {
    const int32_t known = next_[static_cast<size_t>(s)][b];
    if (known != kUnknown) return known;
    const std::vector<int32_t>& from = states_[static_cast<size_t>(s)];
    ex_.advance(from.data(), from.size(), b, tmp_);
    const bool bottom = local_ && drop_empty(tmp_);
    const int32_t id = tmp_.empty() ? -1 : intern(tmp_);
    const int32_t packed = ((id + 1) << 1) | (bottom ? 1 : 0);
    next_[static_cast<size_t>(s)][b] = packed;
    return packed;
  }

  size_t size() const { return states_.size(); }
  // Memory held: states and their transition rows.
  size_t bytes() const { return state_ints_ * sizeof(int32_t) + next_.size() * sizeof(next_[0]); }

 private:
  static constexpr int32_t kUnknown = -1;
  static constexpr size_t kMaxStates = size_t{1} << 16;
  ops::grammar::Expander ex_;
  bool local_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::vector<int32_t>> states_;
  std::vector<std::array<int32_t, 256>> next_;
  std::vector<int32_t> tmp_;
  size_t state_ints_ = 0;
};

// The two memos a grammar's walks share: from stack tops (local) and from whole stacks (full).
struct Memo {
  explicit Memo(const ops::grammar::Grammar& g) : local(g, true), full(g, false) {}
  Dfa local, full;
  // Past this many bytes a kept memo starts over (at a call's start, never during a walk).
  static constexpr size_t kKeepBytes = size_t{32} << 20;
  bool too_big() const { return local.bytes() + full.bytes() > kKeepBytes; }
};

class Walker {
 public:
  Walker(const ops::MaskCache& m, Memo& memo)
      : v_(m.vocab()), ex_(m.grammar()), local_(memo.local), full_(memo.full), levels_(m.vocab().max_len() + 1) {}

  // Walks the trie nodes [begin, end), children of a node at `depth` (0: the root), from state
  // `start` of `dfa`, marking every token whose bytes the state survives. In local mode (a walk
  // from one stack top) the nodes where the top's rule ended with bytes below them go to `open`.
  // With `deeper_than`, only tokens and open nodes below that depth (subtrees of shorter tokens skipped).
  void walk(Dfa& dfa, int32_t start, int32_t begin, int32_t end, size_t depth, uint32_t* mask, std::vector<int32_t>* open,
            size_t deeper_than = 0) {
    const std::vector<VocabIndex::Node>& nodes = v_.nodes();
    const std::vector<int32_t>& toks = v_.node_tokens();
    levels_[depth] = start;
    int32_t i = begin;
    while (i < end) {
      const VocabIndex::Node& nd = nodes[static_cast<size_t>(i)];
      if (nd.deepest <= deeper_than) {
        i = nd.end;
        continue;
      }
      const int32_t t = dfa.step(levels_[nd.depth - 1u], nd.byte);
      const int32_t id = (t >> 1) - 1;
      const bool bottom = (t & 1) != 0;
      if (id < 0 && !bottom) {
        i = nd.end;
        continue;
      }
      // A token that ends where its stack ran empty is allowed: the text goes on below the top.
      if (nd.depth > deeper_than) {
        for (int32_t k = nd.tok_begin; k < nd.tok_end; ++k) ops::mask_set(mask, toks[static_cast<size_t>(k)]);
        if (bottom && open && nd.end > i + 1) open->push_back(i);
      }
      if (id < 0) {
        i = nd.end;
        continue;
      }
      levels_[nd.depth] = id;
      ++i;
    }
  }

  // The walk from a stack's top levels `top` (bottom first, n of them) alone.
  std::shared_ptr<const PositionMask> position(const int32_t* top, size_t n) {
    auto pm = std::make_shared<PositionMask>();
    std::vector<uint32_t> bits(static_cast<size_t>(ops::mask_words(v_.vocab())), 0u);
    walk_top(top, n, bits.data(), pm->open, 0);
    pack(bits, *pm);
    return pm;
  }

  // The same from a position inside a bounded repeat, given `head`'s: that of the same levels at the
  // chain's head, which tokens of at most `len` bytes cannot tell from this one (grammar.h); only
  // the longer ones are walked.
  std::shared_ptr<const PositionMask> position_in_repeat(const int32_t* top, size_t n, const PositionMask& head, size_t len) {
    auto pm = std::make_shared<PositionMask>();
    std::vector<uint32_t> bits = head.bits;
    if (bits.empty()) {
      bits.assign(static_cast<size_t>(ops::mask_words(v_.vocab())), 0u);
      for (int32_t t : head.ids) ops::mask_set(bits.data(), t);
    }
    v_.keep_up_to(bits.data(), len);
    for (int32_t node : head.open)
      if (v_.nodes()[static_cast<size_t>(node)].depth <= len) pm->open.push_back(node);
    walk_top(top, n, bits.data(), pm->open, len);
    pack(bits, *pm);
    return pm;
  }

  void walk_top(const int32_t* top, size_t n, uint32_t* bits, std::vector<int32_t>& open, size_t deeper_than) {
    start_.assign(1, static_cast<int32_t>(n));
    start_.insert(start_.end(), top, top + n);
    walk(local_, local_.intern(start_), 0, static_cast<int32_t>(v_.nodes().size()), 0, bits, &open, deeper_than);
  }

  // Stores an accepted set as ids when that is smaller than the bitset.
  void pack(std::vector<uint32_t>& bits, PositionMask& pm) {
    int64_t count = 0;
    for (uint32_t w : bits) count += __builtin_popcount(w);
    if (count * 32 < v_.vocab()) {  // sparse: an id list is smaller than the bitset
      pm.ids.reserve(static_cast<size_t>(count));
      for (size_t k = 0; k < bits.size(); ++k) {
        for (uint32_t w = bits[k]; w != 0; w &= w - 1) pm.ids.push_back(static_cast<int32_t>(k * 32 + static_cast<size_t>(__builtin_ctz(w))));
      }
    } else {
      pm.bits.swap(bits);
    }
  }

  // The whole trie from a whole state (n ints).
  void walk_state(const int32_t* state, size_t n, uint32_t* mask) {
    below_.assign(state, state + n);
    walk(full_, full_.intern(below_), 0, static_cast<int32_t>(v_.nodes().size()), 0, mask, nullptr);
  }

  // Walks the subtrees of `open` nodes from the full state `below` (the stack under a top).
  void walk_below(std::vector<int32_t>& rest, const std::vector<int32_t>& open, uint32_t* mask) {
    below_.clear();
    ex_.expand(rest, below_);
    const int32_t start = full_.intern(below_);
    for (int32_t node : open) {
      const VocabIndex::Node& nd = v_.nodes()[static_cast<size_t>(node)];
      walk(full_, start, node + 1, nd.end, nd.depth, mask, nullptr);
    }
  }

 private:
  const VocabIndex& v_;
  ops::grammar::Expander ex_;
  Dfa& local_;
  Dfa& full_;
  std::vector<int32_t> levels_;  // the state id after each depth of the current path
  std::vector<int32_t> below_, start_;
};

// A stack top's position mask, from the cache or walked (and cached). With a cache, a position inside
// a bounded repeat starts from its chain head's (itself looked up this way), so each new position
// along a maxLength string walks only the tokens longer than the repeats it has left.
std::shared_ptr<const PositionMask> position_mask(Walker& w, const ops::grammar::Grammar& g, ops::MaskCache* cache, const int32_t* top, size_t k) {
  std::shared_ptr<const PositionMask> pm = cache ? cache->find_position(top, k) : nullptr;
  if (pm) return pm;
  size_t j = k;
  if (cache) {
    for (j = 0; j < k; ++j) {
      const int32_t head = g.repeat_head[static_cast<size_t>(top[j])];
      if (head >= 0 && head != top[j]) break;
    }
  }
  if (j == k) {
    pm = w.position(top, k);
  } else {
    std::array<int32_t, ops::kTopLevels> at{};
    std::copy(top, top + k, at.begin());
    at[j] = g.repeat_head[static_cast<size_t>(top[j])];
    std::shared_ptr<const PositionMask> head = position_mask(w, g, cache, at.data(), k);
    const size_t len = static_cast<size_t>(g.repeat_left[static_cast<size_t>(top[j])]) + 1;
    pm = w.position_in_repeat(top, k, *head, len);
  }
  if (cache) cache->put_position(top, k, pm);
  return pm;
}

}  // namespace

void token_mask_trie(const ops::TokenMaskArgs& a) {
  const VocabIndex& v = a.masks->vocab();
  const size_t words = static_cast<size_t>(ops::mask_words(v.vocab()));
  std::fill(a.mask, a.mask + words, 0u);
  const size_t n = static_cast<size_t>(a.state_len);
  if (a.cache && a.cache->find_state(a.state, n, a.mask)) return;
  // With caches, the grammar's memo (one call at a time); without, one of this call's own.
  std::unique_lock<std::mutex> lock;
  std::shared_ptr<Memo> memo;
  if (a.cache) {
    ops::MaskCache::VariantScratch& scratch = a.cache->scratch();
    lock = std::unique_lock<std::mutex>(scratch.mu);
    memo = std::static_pointer_cast<Memo>(scratch.data);
    if (!memo || memo->too_big()) scratch.data = memo = std::make_shared<Memo>(a.masks->grammar());
  } else {
    memo = std::make_shared<Memo>(a.masks->grammar());
  }
  Walker w(*a.masks, *memo);
  int64_t live = 0;
  for (size_t i = 0; i < n; i += static_cast<size_t>(a.state[i]) + 1) live += a.state[i] > 0 ? 1 : 0;
  if (live > a.wide_stacks) {
    w.walk_state(a.state, n, a.mask);
    if (a.cache) a.cache->put_state(a.state, n, a.mask);
    return;
  }
  std::vector<int32_t> rest;
  for (size_t i = 0; i < n; i += static_cast<size_t>(a.state[i]) + 1) {
    const size_t len = static_cast<size_t>(a.state[i]);
    if (len == 0) continue;  // the complete sentence: end tokens are the caller's
    const size_t k = std::min(len, ops::kTopLevels);
    const int32_t* top = a.state + i + 1 + (len - k);
    std::shared_ptr<const PositionMask> pm = position_mask(w, a.masks->grammar(), a.cache, top, k);
    if (!pm->bits.empty()) {
      for (size_t j = 0; j < words; ++j) a.mask[j] |= pm->bits[j];
    }
    for (int32_t t : pm->ids) ops::mask_set(a.mask, t);
    if (pm->open.empty() || len == k) continue;  // nothing below the top: no text after it
    // Where the text goes on once the top levels have ended: the stack below them, normalized.
    rest.assign(a.state + i + 1, a.state + i + 1 + (len - k));
    w.walk_below(rest, pm->open, a.mask);
  }
  if (a.cache) a.cache->put_state(a.state, n, a.mask);
}

}  // namespace qvl::cpu
