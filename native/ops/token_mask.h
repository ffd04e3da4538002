// Which tokens of the vocabulary a grammar state allows next: structured output's per-step mask.
//
// A token is allowed when the matcher survives all of its bytes from the state (ops/grammar.h); a
// token without bytes (special and added tokens, unused ids) is never text and matches nothing. The
// mask covers text tokens only: end tokens are the caller's (constrain_logits).
//
// Variants (the parity harness holds them to the reference bit for bit):
//   reference  every token simulated byte by byte from the state
//   trie       one walk over a byte trie of the vocabulary (shared prefixes advanced once, a dead
//              prefix prunes its whole subtree), with what the grammar's MaskCache keeps:
//              - per stack top (the top kTopLevels levels of a stack): the tokens it accepts whatever
//                lies below, and the trie nodes where those levels end with bytes left (only their
//                subtrees are walked again, from the stack below), so a position costs one walk per
//                grammar. One level is too few: a code point class is a rule of its own that ends after
//                every character, so nearly every node would be left open; three reach past a
//                string's characters to its closing quote;
//              - per whole state: the finished mask (a repeated state, like "inside a string", is a copy);
//              - the walk's parser states and their byte transitions, memoized (MaskCache::scratch).
//              A stack top inside a bounded repeat (grammar.h repeat_head: a maxLength string's
//              characters) takes the tokens of at most c + 1 bytes (c: repeats left) from its chain
//              head's position and walks only the subtrees of longer tokens, so the ~60 distinct
//              positions of a maxLength 60 string cost one full walk, not 60.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ops/grammar.h"
#include "ops/registry.h"

namespace qvl::ops {

// The vocabulary's bytes, built once per model: per token and as a trie in preorder.
class VocabIndex {
 public:
  // Token t's bytes are bytes[offsets[t] .. offsets[t + 1]); offsets has vocab + 1 entries, starts
  // at 0, never decreases and ends at n_bytes (E_INPUT otherwise). Empty: not text.
  VocabIndex(const uint8_t* bytes, int64_t n_bytes, const int32_t* offsets, int64_t vocab);

  struct Node {
    int32_t end;        // one past the last node of this node's subtree
    int32_t tok_begin;  // tokens whose bytes end here: node_tokens[tok_begin .. tok_end)
    int32_t tok_end;
    uint16_t depth;     // bytes from the root (the root itself is not stored; depth 1 = first byte)
    uint8_t byte;
    uint16_t deepest;   // the depth of the longest token in this node's subtree (itself included)
  };

  int64_t vocab() const { return vocab_; }
  const uint8_t* token(int32_t t, size_t* len) const {
    *len = static_cast<size_t>(offsets_[static_cast<size_t>(t) + 1] - offsets_[static_cast<size_t>(t)]);
    return bytes_.data() + offsets_[static_cast<size_t>(t)];
  }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& node_tokens() const { return node_tokens_; }
  size_t max_len() const { return max_len_; }
  int64_t text_tokens() const { return static_cast<int64_t>(node_tokens_.size()); }
  // Keeps in `mask` (mask_words long) only the tokens of at most `len` bytes.
  void keep_up_to(uint32_t* mask, size_t len) const;

 private:
  int64_t vocab_;
  std::vector<uint8_t> bytes_;
  std::vector<int32_t> offsets_;
  std::vector<Node> nodes_;
  std::vector<int32_t> node_tokens_;
  size_t max_len_ = 0;
  // Tokens by length, for keep_up_to: short_[L] is the mask of tokens of at most L bytes (L <= kShort);
  // longer ones are few and listed with their lengths.
  static constexpr size_t kShort = 64;
  std::vector<std::vector<uint32_t>> short_;
  std::vector<std::pair<int32_t, size_t>> long_;
};

inline int64_t mask_words(int64_t vocab) { return (vocab + 31) / 32; }
inline bool mask_has(const uint32_t* mask, int64_t t) { return (mask[t >> 5] >> (t & 31)) & 1; }
inline void mask_set(uint32_t* mask, int64_t t) { mask[t >> 5] |= uint32_t{1} << (t & 31); }

// Levels of a stack that key the per-position cache.
constexpr size_t kTopLevels = 3;

// What tokens do from a stack's top levels, whatever lies below them.
struct PositionMask {
  std::vector<uint32_t> bits;     // dense accepted set (mask_words long), or empty when `ids` holds it
  std::vector<int32_t> ids;       // sparse accepted set
  std::vector<int32_t> open;      // trie nodes where the element's rule has ended with bytes left
  size_t bytes() const { return (bits.size() + ids.size() + open.size()) * 4 + sizeof(PositionMask); }
};

// One grammar over one vocabulary, with the caches every sequence using the grammar shares.
// Thread-safe: masks of several sequences are computed at once on the pool.
class MaskCache {
 public:
  MaskCache(std::shared_ptr<const grammar::Grammar> g, std::shared_ptr<const VocabIndex> v, size_t max_bytes = size_t{64} << 20);
  const grammar::Grammar& grammar() const { return *grammar_; }
  const VocabIndex& vocab() const { return *vocab_; }

  // The whole-state cache: true (and the mask copied out) on a hit.
  bool find_state(const int32_t* state, size_t n, uint32_t* mask);
  void put_state(const int32_t* state, size_t n, const uint32_t* mask);
  // `top`: a stack's top levels (bottom first).
  std::shared_ptr<const PositionMask> find_position(const int32_t* top, size_t n);
  void put_position(const int32_t* top, size_t n, std::shared_ptr<const PositionMask> m);

  struct Stats { int64_t state_hits, state_misses, position_hits, position_misses, bytes; };
  Stats stats() const;

  // What a kernel variant keeps for this grammar between calls (the trie walk's memoized parser
  // states and transitions), opaque here; one call holds `mu` while it uses `data`.
  struct VariantScratch {
    std::mutex mu;
    std::shared_ptr<void> data;
  };
  VariantScratch& scratch() { return scratch_; }

 private:
  void make_room(size_t need);  // under mu_
  std::shared_ptr<const grammar::Grammar> grammar_;
  std::shared_ptr<const VocabIndex> vocab_;
  size_t max_bytes_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const std::vector<uint32_t>>> states_;
  std::unordered_map<std::string, std::shared_ptr<const PositionMask>> positions_;
  size_t bytes_ = 0;
  Stats stats_{0, 0, 0, 0, 0};
  VariantScratch scratch_;
};

struct TokenMaskArgs {
  const MaskCache* masks = nullptr;  // the grammar and vocabulary (the reference reads nothing else)
  MaskCache* cache = nullptr;        // caches to use and fill (null: none)
  const int32_t* state = nullptr;    // a flat matcher state
  int64_t state_len = 0;
  uint32_t* mask = nullptr;          // out: mask_words(vocab) words, every one written
  // trie: a state with more live stacks than this (many alternatives at once: a long key list) is
  // walked whole, once, rather than per stack top, each from the trie's root.
  int64_t wide_stacks = 16;
};

using TokenMaskFn = void (*)(const TokenMaskArgs&);

const OpFamily<TokenMaskFn>& token_mask_family();

// E_INPUT on a null or malformed state (lengths, element indices).
void check_token_mask(const TokenMaskArgs& a);
// Validates and runs the best variant.
void token_mask(const TokenMaskArgs& a);

// Completes a text mask with the end tokens (allowed exactly when `accepts`: the text is a
// complete sentence) and sets logits of every token outside it to -inf. Returns how many stay.
int64_t constrain_logits(float* logits, uint32_t* mask, int64_t vocab, const int32_t* end_ids, int64_t n_end, bool accepts);

// The state after token t's bytes; false (state untouched) when the grammar refuses them or t is not text.
bool advance_token(const MaskCache& m, std::vector<int32_t>& state, int32_t t);

}  // namespace qvl::ops
