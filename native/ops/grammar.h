// Structured output's grammar, natively: a GrammarIR (lib/structured/grammar-ir.ts) checked and
// compiled to a byte-level grammar, and a pushdown matcher over it that advances one BYTE at a time
// (byte-level BPE tokens split UTF-8 sequences, so a code point class becomes byte steps here).
//
// The IR crosses N-API flattened into int32s (lib/structured/flatten-grammar.ts writes it):
//   n_rules, root, then per rule: n_alts, then per alternative: n_items, then per item one of
//     0 (lit)  n_bytes, byte...              the literal's UTF-8 bytes, n_bytes >= 1
//     1 (cls)  neg, n_ranges, (lo, hi)...    code point ranges (neg: outside all of them)
//     2 (ref)  rule
//
// Compiled form: `elems` holds every alternative as a run of elements ended by End; a Bytes element
// matches one byte in a 256-bit set, a Ref element matches a rule. Element 0..1 are [Ref root, End],
// the start. A class becomes a rule of its own whose alternatives are the UTF-8 byte sequences of
// its code points (alternatives with the same continuation share one first-byte set).
//
// Matcher state: a set of stacks of element indices (bottom first). The top of a stack is the Bytes
// element to match next; the ones below are where to continue when the rule above ends. A stack is
// kept normalized: finished levels popped, Refs expanded into their alternatives, and a continuation
// that would be End never pushed (so right recursion, the IR's way to repeat, keeps the stack flat).
// The empty stack means "the whole grammar matched": the text so far is a complete sentence.
// A state is flat: [len, elem...] per stack, stacks sorted, so equal states are equal int vectors.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

namespace qvl::ops::grammar {

// Limits: items in the IR (grammar-ir.md), live stacks per state, and stack depth. Past the last two
// the matcher throws E_UNSUPPORTED "grammar too ambiguous" rather than grow without bound.
constexpr int64_t kMaxItems = int64_t{1} << 20;
constexpr size_t kMaxStacks = 2048;
constexpr size_t kMaxDepth = 4096;

struct ByteSet {
  uint64_t w[4] = {0, 0, 0, 0};
  bool has(uint8_t b) const { return (w[b >> 6] >> (b & 63)) & 1; }
  void add(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) w[b >> 6] |= uint64_t{1} << (b & 63);
  }
};

struct Elem {
  enum Kind : uint8_t { End, Bytes, Ref };
  Kind kind;
  int32_t arg;  // Bytes: index into sets; Ref: rule
};

class Grammar {
 public:
  // Checks and compiles a flattened IR; E_INPUT naming the rule (and alternative, item) on a
  // violation of grammar-ir.md, E_UNSUPPORTED past the size limits.
  static std::shared_ptr<const Grammar> from_flat(const int32_t* data, int64_t n);

  std::vector<Elem> elems;
  std::vector<ByteSet> sets;
  std::vector<int32_t> alt_off;     // rule r's alternatives are alt_start[alt_off[r] .. alt_off[r + 1])
  std::vector<int32_t> alt_start;   // first element of each alternative
  int32_t ir_rules = 0;             // rules from the IR; class rules follow

  // Bounded repeats (a maxLength string, a maxItems array): the IR unrolls X{0,n} into a chain of
  // rules R_k := "" | X R_{k+1} ending in R_n := "", so every position along it is a distinct stack.
  // Per element: for the Ref R_{k+1} inside such a chain (X the same, non-nullable, all along it),
  // the same element at the chain's head (`repeat_head`, whose position allows the most repeats) and
  // how many more X the referenced rule allows (`repeat_left`); -1 elsewhere. From a position with
  // c repeats left, a token of at most c + 1 bytes cannot tell it from the head's (each X takes a byte).
  std::vector<int32_t> repeat_head;
  std::vector<int32_t> repeat_left;
};

// The stacks a normalized advance produces, deduplicated, written flat into `out` (appended).
// One per thread: it keeps scratch stacks between calls so the hot loop does not allocate.
class Expander {
 public:
  explicit Expander(const Grammar& g) : g_(g) {}
  // Normalizes stack `st` (bottom first; consumed) and appends the stacks it yields to out.
  void expand(std::vector<int32_t>& st, std::vector<int32_t>& out);
  // The state after byte b from `state` (flat, n ints) into out (cleared). True when out is non-empty.
  bool advance(const int32_t* state, size_t n, uint8_t b, std::vector<int32_t>& out);

 private:
  void run(size_t depth, std::vector<int32_t>& out);
  void emit(const std::vector<int32_t>& st, std::vector<int32_t>& out);
  const Grammar& g_;
  std::vector<std::vector<int32_t>> scratch_;  // one stack per recursion depth
  std::vector<int32_t> tmp_;
};

// The start state (before any text).
std::vector<int32_t> initial_state(const Grammar& g);
// Whether the state holds the empty stack (the text so far is a complete sentence).
bool state_accepts(const int32_t* state, size_t n);
// Whether any byte can follow (some stack is not empty).
bool state_can_continue(const int32_t* state, size_t n);
// Puts the stacks of a flat state in canonical (sorted) order, so equal sets compare equal.
void canonicalize(std::vector<int32_t>& state);
// Advances a state over bytes; false (state untouched) when some byte is refused.
bool advance_bytes(const Grammar& g, std::vector<int32_t>& state, const uint8_t* bytes, size_t n);

}  // namespace qvl::ops::grammar
