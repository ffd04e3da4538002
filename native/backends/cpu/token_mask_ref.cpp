// Plain token mask: every text token simulated byte by byte from the state, as the definition in
// ops/token_mask.h reads.
#include <algorithm>
#include <vector>

#include "ops/token_mask.h"

namespace qvl::cpu {

void token_mask_ref(const ops::TokenMaskArgs& a) {
  const ops::VocabIndex& v = a.masks->vocab();
  const ops::grammar::Grammar& g = a.masks->grammar();
  std::fill(a.mask, a.mask + ops::mask_words(v.vocab()), 0u);
  ops::grammar::Expander ex(g);
  std::vector<int32_t> cur, next;
  for (int32_t t = 0; t < v.vocab(); ++t) {
    size_t n;
    const uint8_t* p = v.token(t, &n);
    if (n == 0) continue;
    cur.assign(a.state, a.state + a.state_len);
    bool alive = true;
    for (size_t i = 0; i < n && alive; ++i) {
      alive = ex.advance(cur.data(), cur.size(), p[i], next);
      cur.swap(next);
    }
    if (alive) ops::mask_set(a.mask, t);
  }
}

}  // namespace qvl::cpu
