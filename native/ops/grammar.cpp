#include "ops/grammar.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "core/error.h"

namespace qvl::ops::grammar {

namespace {

using Range = std::pair<uint32_t, uint32_t>;
// One UTF-8 byte sequence pattern: a byte range per position.
using ByteSeq = std::vector<std::pair<uint8_t, uint8_t>>;

struct IrItem {
  int32_t kind;                  // 0 lit, 1 cls, 2 ref
  std::vector<uint8_t> bytes;    // lit
  std::vector<Range> ranges;     // cls
  bool neg = false;              // cls
  int32_t ref = -1;              // ref
};
using IrAlt = std::vector<IrItem>;

class Reader {
 public:
  Reader(const int32_t* d, int64_t n) : d_(d), n_(n) {}
  int32_t next(const std::string& what) {
    if (i_ >= n_) fail(ErrorCode::Input, "grammar: the flattened IR ends early (reading " + what + ")");
    return d_[i_++];
  }
  // A count that must fit in what is left (each counted thing takes at least `unit` ints).
  int32_t count(const std::string& what, int64_t unit) {
    const int32_t c = next(what);
    if (c < 0 || static_cast<int64_t>(c) * unit > n_ - i_)
      fail(ErrorCode::Input, "grammar: " + what + " count " + std::to_string(c) + " is negative or overruns the IR");
    return c;
  }
  bool done() const { return i_ == n_; }

 private:
  const int32_t* d_;
  int64_t n_;
  int64_t i_ = 0;
};

uint32_t utf8_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

void utf8_encode(uint32_t cp, uint8_t* out) {
  const uint32_t n = utf8_len(cp);
  if (n == 1) {
    out[0] = static_cast<uint8_t>(cp);
    return;
  }
  static const uint8_t lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (uint32_t k = n - 1; k > 0; --k) {
    out[k] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  out[0] = static_cast<uint8_t>(lead[n] | cp);
}

// Code points [lo, hi] of one encoded length as byte-range sequences: split until every position
// after the first differing one spans its whole continuation range.
void split_same_length(uint32_t lo, uint32_t hi, std::vector<ByteSeq>& out) {
  const uint32_t n = utf8_len(lo);
  for (uint32_t i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        split_same_length(lo, lo | m, out);
        split_same_length((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        split_same_length(lo, (hi & ~m) - 1, out);
        split_same_length(hi & ~m, hi, out);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  utf8_encode(lo, a);
  utf8_encode(hi, b);
  ByteSeq s;
  for (uint32_t k = 0; k < n; ++k) s.emplace_back(a[k], b[k]);
  out.push_back(std::move(s));
}

// The scalar values a class matches, sorted and merged, surrogates removed.
std::vector<Range> class_ranges(std::vector<Range> r, bool neg) {
  std::sort(r.begin(), r.end());
  std::vector<Range> merged;
  for (const Range& x : r) {
    if (!merged.empty() && x.first <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, x.second);
    else merged.push_back(x);
  }
  if (neg) {
    std::vector<Range> c;
    uint32_t at = 0;
    for (const Range& x : merged) {
      if (x.first > at) c.emplace_back(at, x.first - 1);
      at = x.second + 1;
    }
    if (at <= 0x10FFFF) c.emplace_back(at, 0x10FFFF);
    merged.swap(c);
  }
  std::vector<Range> out;
  for (const Range& x : merged) {
    if (x.second < 0xD800 || x.first > 0xDFFF) {
      out.push_back(x);
      continue;
    }
    if (x.first < 0xD800) out.emplace_back(x.first, 0xD7FF);
    if (x.second > 0xDFFF) out.emplace_back(0xE000, x.second);
  }
  return out;
}

// A class's byte sequences, alternatives with the same continuation merged into one first-byte set.
std::vector<std::pair<ByteSet, ByteSeq>> class_alternatives(const std::vector<Range>& ranges) {
  std::vector<ByteSeq> seqs;
  static const uint32_t bounds[] = {0x7F, 0x7FF, 0xFFFF, 0x10FFFF};
  for (const Range& x : ranges) {
    uint32_t lo = x.first;
    for (uint32_t b : bounds) {
      if (lo > x.second) break;
      if (lo > b) continue;
      const uint32_t hi = std::min(x.second, b);
      split_same_length(lo, hi, seqs);
      lo = hi + 1;
    }
  }
  std::map<ByteSeq, ByteSet> by_tail;
  for (const ByteSeq& s : seqs) by_tail[ByteSeq(s.begin() + 1, s.end())].add(s[0].first, s[0].second);
  std::vector<std::pair<ByteSet, ByteSeq>> out;
  for (auto& [tail, first] : by_tail) out.emplace_back(first, tail);
  return out;
}

std::string where(size_t r, size_t a, size_t i) {
  return "grammar: rule " + std::to_string(r) + ", alternative " + std::to_string(a) + ", item " + std::to_string(i);
}

class Builder {
 public:
  explicit Builder(Grammar& g) : g_(g) {
    for (int b = 0; b < 256; ++b) {
      ByteSet s;
      s.add(static_cast<uint8_t>(b), static_cast<uint8_t>(b));
      g_.sets.push_back(s);
    }
  }
  void bytes_elem(const ByteSet& s) {
    g_.sets.push_back(s);
    push({Elem::Bytes, static_cast<int32_t>(g_.sets.size() - 1)});
  }
  void push(Elem e) {
    if (g_.elems.size() >= static_cast<size_t>(4 * kMaxItems))
      fail(ErrorCode::Unsupported, "grammar: too large once compiled to bytes (more than " + std::to_string(4 * kMaxItems) + " elements)");
    g_.elems.push_back(e);
  }
  void begin_alt() { g_.alt_start.push_back(static_cast<int32_t>(g_.elems.size())); }
  void end_rule() { g_.alt_off.push_back(static_cast<int32_t>(g_.alt_start.size())); }

 private:
  Grammar& g_;
};

// Rules that can match the empty text.
std::vector<uint8_t> nullable_rules(const Grammar& g) {
  const size_t R = g.alt_off.size() - 1;
  std::vector<uint8_t> nullable(R, 0);
  auto alt_nullable = [&](int32_t e) {
    for (; g.elems[static_cast<size_t>(e)].kind != Elem::End; ++e) {
      const Elem& x = g.elems[static_cast<size_t>(e)];
      if (x.kind == Elem::Bytes || !nullable[static_cast<size_t>(x.arg)]) return false;
    }
    return true;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < R; ++r) {
      if (nullable[r]) continue;
      for (int32_t a = g.alt_off[r]; a < g.alt_off[r + 1]; ++a) {
        if (alt_nullable(g.alt_start[static_cast<size_t>(a)])) {
          nullable[r] = 1, changed = true;
          break;
        }
      }
    }
  }
  return nullable;
}

// Left recursion: a rule reachable from itself through refs preceded only by nullable items.
void check_left_recursion(const Grammar& g, const std::vector<uint8_t>& nullable) {
  const size_t R = g.alt_off.size() - 1;
  // Edges r -> s: s may start r's text. A DFS with colours finds a cycle.
  std::vector<std::vector<int32_t>> edges(R);
  for (size_t r = 0; r < R; ++r) {
    for (int32_t a = g.alt_off[r]; a < g.alt_off[r + 1]; ++a) {
      for (int32_t e = g.alt_start[static_cast<size_t>(a)]; g.elems[static_cast<size_t>(e)].kind == Elem::Ref; ++e) {
        const int32_t s = g.elems[static_cast<size_t>(e)].arg;
        edges[r].push_back(s);
        if (!nullable[static_cast<size_t>(s)]) break;
      }
    }
  }
  std::vector<uint8_t> colour(R, 0);  // 0 new, 1 on the path, 2 done
  std::vector<std::pair<int32_t, size_t>> path;
  for (size_t start = 0; start < R; ++start) {
    if (colour[start]) continue;
    path.emplace_back(static_cast<int32_t>(start), 0);
    colour[start] = 1;
    while (!path.empty()) {
      auto& [r, k] = path.back();
      if (k == edges[static_cast<size_t>(r)].size()) {
        colour[static_cast<size_t>(r)] = 2;
        path.pop_back();
        continue;
      }
      const int32_t s = edges[static_cast<size_t>(r)][k++];
      if (colour[static_cast<size_t>(s)] == 1)
        fail(ErrorCode::Input, "grammar: rule " + std::to_string(s) + " is left-recursive (it can reach itself without consuming text)");
      if (colour[static_cast<size_t>(s)] == 0) {
        colour[static_cast<size_t>(s)] = 1;
        path.emplace_back(s, 0);
      }
    }
  }
}

// Fills repeat_head / repeat_left (grammar.h): finds the chains R_k := "" | X R_{k+1} ... R_n := "".
void find_repeats(Grammar& g, const std::vector<uint8_t>& nullable) {
  const size_t R = g.alt_off.size() - 1;
  g.repeat_head.assign(g.elems.size(), -1);
  g.repeat_left.assign(g.elems.size(), -1);
  auto kind = [&](int32_t e) { return g.elems[static_cast<size_t>(e)].kind; };
  auto empty_alt = [&](int32_t a) { return kind(g.alt_start[static_cast<size_t>(a)]) == Elem::End; };
  // Per rule: -1 not in a chain, else the element of its "X R_{k+1}" alternative's Ref R_{k+1}.
  std::vector<int32_t> step(R, -1);
  std::vector<uint8_t> terminal(R, 0);
  for (size_t r = 0; r < R; ++r) {
    const int32_t a0 = g.alt_off[r], a1 = g.alt_off[r + 1];
    if (a1 - a0 == 1 && empty_alt(a0)) terminal[r] = 1;
    if (a1 - a0 != 2) continue;
    const int32_t full = empty_alt(a0) ? a0 + 1 : empty_alt(a0 + 1) ? a0 : -1;
    if (full < 0) continue;
    const int32_t e = g.alt_start[static_cast<size_t>(full)];
    if (kind(e) != Elem::Ref || kind(e + 1) != Elem::Ref || kind(e + 2) != Elem::End) continue;
    if (nullable[static_cast<size_t>(g.elems[static_cast<size_t>(e)].arg)]) continue;
    step[r] = e + 1;
  }
  auto x_of = [&](size_t r) { return g.elems[static_cast<size_t>(step[r] - 1)].arg; };
  auto next_of = [&](size_t r) { return static_cast<size_t>(g.elems[static_cast<size_t>(step[r])].arg); };
  // X left after rule r's Ref, following the chain while X stays the same: -1 when it is not a chain.
  std::vector<int32_t> left(R, -2);  // -2: not computed yet
  for (size_t r0 = 0; r0 < R; ++r0) {
    std::vector<size_t> path;
    size_t r = r0;
    int32_t base = -1;
    while (step[r] >= 0 && left[r] == -2) {
      path.push_back(r);
      left[r] = -3;  // on the path (a cycle is right recursion, not a bound)
      const size_t s = next_of(r);
      if (terminal[s]) { base = 0; break; }
      if (step[s] < 0 || x_of(s) != x_of(r) || left[s] == -3) { base = -1; break; }
      if (left[s] >= 0) { base = left[s] + 1; break; }
      if (left[s] == -1) { base = -1; break; }
      r = s;
    }
    // Unwind: each rule on the path allows one more than the next (base: what the last one's next allows).
    for (size_t k = path.size(); k-- > 0;) {
      if (base >= 0) ++base;
      left[path[k]] = base;
    }
    if (step[r0] < 0) left[r0] = -1;
  }
  // The head of a chain: a chain rule no chain rule with the same X refers to.
  std::vector<uint8_t> inner(R, 0);
  for (size_t r = 0; r < R; ++r)
    if (left[r] >= 0 && !terminal[next_of(r)] && left[next_of(r)] >= 0) inner[next_of(r)] = 1;
  for (size_t h = 0; h < R; ++h) {
    if (left[h] < 0 || inner[h]) continue;
    const int32_t head = step[h];
    for (size_t r = h;;) {
      const int32_t e = step[r];
      const size_t s = next_of(r);
      // Shared tails: keep the head that allows the most.
      const int32_t old = g.repeat_head[static_cast<size_t>(e)];
      if (old < 0 || g.repeat_left[static_cast<size_t>(old)] < left[h] - 1) {
        g.repeat_head[static_cast<size_t>(e)] = head;
      }
      g.repeat_left[static_cast<size_t>(e)] = terminal[s] ? 0 : left[s];
      if (terminal[s]) break;
      r = s;
    }
  }
}

}  // namespace

std::shared_ptr<const Grammar> Grammar::from_flat(const int32_t* data, int64_t n) {
  QVL_CHECK(data || n == 0, Input, "grammar: null IR");
  Reader in(data, n);
  const int32_t R = in.count("rule", 1);
  QVL_CHECK(R >= 1, Input, "grammar: no rules");
  const int32_t root = in.next("root");
  QVL_CHECK(root >= 0 && root < R, Input, "grammar: root " + std::to_string(root) + " is not a rule index");
  std::vector<std::vector<IrAlt>> rules(static_cast<size_t>(R));
  int64_t items = 0;
  for (size_t r = 0; r < rules.size(); ++r) {
    const int32_t A = in.count("rule " + std::to_string(r) + " alternative", 1);
    QVL_CHECK(A >= 1, Input, "grammar: rule " + std::to_string(r) + " has no alternative");
    rules[r].resize(static_cast<size_t>(A));
    for (size_t a = 0; a < rules[r].size(); ++a) {
      const int32_t I = in.count("rule " + std::to_string(r) + " item", 2);
      items += I;
      QVL_CHECK(items <= kMaxItems, Unsupported, "grammar: more than " + std::to_string(kMaxItems) + " items");
      for (size_t i = 0; i < static_cast<size_t>(I); ++i) {
        IrItem it;
        it.kind = in.next(where(r, a, i));
        if (it.kind == 0) {
          const int32_t L = in.count(where(r, a, i) + " literal byte", 1);
          QVL_CHECK(L >= 1, Input, where(r, a, i) + ": empty literal");
          for (int32_t k = 0; k < L; ++k) {
            const int32_t b = in.next(where(r, a, i));
            QVL_CHECK(b >= 0 && b <= 255, Input, where(r, a, i) + ": literal byte " + std::to_string(b) + " is not a byte");
            it.bytes.push_back(static_cast<uint8_t>(b));
          }
        } else if (it.kind == 1) {
          const int32_t neg = in.next(where(r, a, i));
          QVL_CHECK(neg == 0 || neg == 1, Input, where(r, a, i) + ": neg must be 0 or 1");
          it.neg = neg == 1;
          const int32_t K = in.count(where(r, a, i) + " range", 2);
          for (int32_t k = 0; k < K; ++k) {
            const int32_t lo = in.next(where(r, a, i)), hi = in.next(where(r, a, i));
            QVL_CHECK(lo >= 0 && hi <= 0x10FFFF && lo <= hi, Input,
                      where(r, a, i) + ": range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                          "] is not within [0, 0x10FFFF] with lo <= hi");
            it.ranges.emplace_back(static_cast<uint32_t>(lo), static_cast<uint32_t>(hi));
          }
        } else if (it.kind == 2) {
          it.ref = in.next(where(r, a, i));
          QVL_CHECK(it.ref >= 0 && it.ref < R, Input, where(r, a, i) + ": ref " + std::to_string(it.ref) + " is not a rule index");
        } else {
          fail(ErrorCode::Input, where(r, a, i) + ": unknown item kind " + std::to_string(it.kind));
        }
        rules[r][a].push_back(std::move(it));
      }
    }
  }
  QVL_CHECK(in.done(), Input, "grammar: the flattened IR has data after its last rule");

  auto g = std::make_shared<Grammar>();
  g->ir_rules = R;
  Builder b(*g);
  b.push({Elem::Ref, root});
  b.push({Elem::End, 0});
  g->alt_off.push_back(0);
  std::vector<const IrItem*> classes;
  // One rule per distinct class (the same class written twice is one rule: a bounded repeat of a
  // class item, like [0-9]{0,8}, is then a chain of one X that find_repeats recognizes).
  std::map<std::pair<bool, std::vector<Range>>, int32_t> class_rule;
  for (const auto& rule : rules) {
    for (const IrAlt& alt : rule) {
      b.begin_alt();
      for (const IrItem& it : alt) {
        if (it.kind == 0) {
          for (uint8_t c : it.bytes) b.push({Elem::Bytes, c});
        } else if (it.kind == 2) {
          b.push({Elem::Ref, it.ref});
        } else {
          auto [at, fresh] = class_rule.emplace(std::make_pair(it.neg, it.ranges), R + static_cast<int32_t>(classes.size()));
          if (fresh) classes.push_back(&it);
          b.push({Elem::Ref, at->second});
        }
      }
      b.push({Elem::End, 0});
    }
    b.end_rule();
  }
  for (const IrItem* c : classes) {
    const auto alts = class_alternatives(class_ranges(c->ranges, c->neg));
    if (alts.empty()) {
      b.begin_alt();  // matches no code point: one step no byte passes
      b.bytes_elem(ByteSet{});
      b.push({Elem::End, 0});
    }
    for (const auto& [first, tail] : alts) {
      b.begin_alt();
      b.bytes_elem(first);
      for (const auto& [lo, hi] : tail) {
        ByteSet s;
        s.add(lo, hi);
        b.bytes_elem(s);
      }
      b.push({Elem::End, 0});
    }
    b.end_rule();
  }
  const std::vector<uint8_t> nullable = nullable_rules(*g);
  check_left_recursion(*g, nullable);
  find_repeats(*g, nullable);
  return g;
}

void Expander::emit(const std::vector<int32_t>& st, std::vector<int32_t>& out) {
  size_t count = 0;
  for (size_t i = 0; i < out.size(); i += static_cast<size_t>(out[i]) + 1, ++count) {
    const size_t len = static_cast<size_t>(out[i]);
    if (len == st.size() && std::equal(st.begin(), st.end(), out.begin() + static_cast<std::ptrdiff_t>(i + 1))) return;
  }
  QVL_CHECK(count < kMaxStacks, Unsupported,
            "structured output: the grammar is too ambiguous (more than " + std::to_string(kMaxStacks) + " live parse stacks)");
  out.push_back(static_cast<int32_t>(st.size()));
  out.insert(out.end(), st.begin(), st.end());
}

void Expander::run(size_t depth, std::vector<int32_t>& out) {
  QVL_CHECK(depth < kMaxDepth, Unsupported,
            "structured output: the grammar nests more than " + std::to_string(kMaxDepth) + " rules without consuming text");
  std::vector<int32_t>& st = scratch_[depth];
  while (!st.empty() && g_.elems[static_cast<size_t>(st.back())].kind == Elem::End) st.pop_back();
  if (st.empty() || g_.elems[static_cast<size_t>(st.back())].kind == Elem::Bytes) {
    emit(st, out);
    return;
  }
  const int32_t top = st.back();
  st.pop_back();
  // The rest of this alternative, unless it is finished (no End continuation is ever kept).
  if (g_.elems[static_cast<size_t>(top) + 1].kind != Elem::End) st.push_back(top + 1);
  QVL_CHECK(st.size() < kMaxDepth, Unsupported,
            "structured output: the parse stack is deeper than " + std::to_string(kMaxDepth) + " rules");
  if (scratch_.size() <= depth + 1) scratch_.resize(depth + 2);  // (st is not used past here)
  const int32_t rule = g_.elems[static_cast<size_t>(top)].arg;
  for (int32_t a = g_.alt_off[static_cast<size_t>(rule)]; a < g_.alt_off[static_cast<size_t>(rule) + 1]; ++a) {
    std::vector<int32_t>& child = scratch_[depth + 1];
    child.assign(scratch_[depth].begin(), scratch_[depth].end());
    child.push_back(g_.alt_start[static_cast<size_t>(a)]);
    run(depth + 1, out);
  }
}

void Expander::expand(std::vector<int32_t>& st, std::vector<int32_t>& out) {
  if (scratch_.empty()) scratch_.resize(1);
  scratch_[0].swap(st);
  run(0, out);
}

bool Expander::advance(const int32_t* state, size_t n, uint8_t b, std::vector<int32_t>& out) {
  out.clear();
  for (size_t i = 0; i < n; i += static_cast<size_t>(state[i]) + 1) {
    const size_t len = static_cast<size_t>(state[i]);
    if (len == 0) continue;
    const int32_t top = state[i + len];
    if (!g_.sets[static_cast<size_t>(g_.elems[static_cast<size_t>(top)].arg)].has(b)) continue;
    tmp_.assign(state + i + 1, state + i + len);
    tmp_.push_back(top + 1);
    expand(tmp_, out);
  }
  return !out.empty();
}

std::vector<int32_t> initial_state(const Grammar& g) {
  Expander ex(g);
  std::vector<int32_t> st{0}, out;
  ex.expand(st, out);
  canonicalize(out);
  return out;
}

bool state_accepts(const int32_t* state, size_t n) {
  for (size_t i = 0; i < n; i += static_cast<size_t>(state[i]) + 1)
    if (state[i] == 0) return true;
  return false;
}

bool state_can_continue(const int32_t* state, size_t n) {
  for (size_t i = 0; i < n; i += static_cast<size_t>(state[i]) + 1)
    if (state[i] != 0) return true;
  return false;
}

void canonicalize(std::vector<int32_t>& state) {
  std::vector<std::pair<size_t, size_t>> stacks;  // (offset of the first element, length)
  for (size_t i = 0; i < state.size(); i += static_cast<size_t>(state[i]) + 1) stacks.emplace_back(i + 1, static_cast<size_t>(state[i]));
  std::sort(stacks.begin(), stacks.end(), [&](const auto& x, const auto& y) {
    return std::lexicographical_compare(state.begin() + static_cast<std::ptrdiff_t>(x.first),
                                        state.begin() + static_cast<std::ptrdiff_t>(x.first + x.second),
                                        state.begin() + static_cast<std::ptrdiff_t>(y.first),
                                        state.begin() + static_cast<std::ptrdiff_t>(y.first + y.second));
  });
  std::vector<int32_t> out;
  out.reserve(state.size());
  for (const auto& [off, len] : stacks) {
    out.push_back(static_cast<int32_t>(len));
    out.insert(out.end(), state.begin() + static_cast<std::ptrdiff_t>(off), state.begin() + static_cast<std::ptrdiff_t>(off + len));
  }
  state.swap(out);
}

bool advance_bytes(const Grammar& g, std::vector<int32_t>& state, const uint8_t* bytes, size_t n) {
  Expander ex(g);
  std::vector<int32_t> cur = state, next;
  for (size_t i = 0; i < n; ++i) {
    if (!ex.advance(cur.data(), cur.size(), bytes[i], next)) return false;
    cur.swap(next);
  }
  canonicalize(cur);
  state.swap(cur);
  return true;
}

}  // namespace qvl::ops::grammar
