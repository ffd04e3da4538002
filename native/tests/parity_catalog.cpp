// The parity suites. Adding an op family = one declaration and one line here.
#include "tests/parity.h"

namespace qvl::parity {

const std::vector<Entry>& suites() {
  static const std::vector<Entry> all = {
  };
  return all;
}

}  // namespace qvl::parity
