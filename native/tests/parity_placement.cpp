// Checks of the loader's placement choice (no kernel arithmetic): from a probe's figures, whether
// stored weights are copied out of the mapping and which pages owned weights get. Each case is a
// "check" Result, run with the kernel suites by test/native/parity.test.ts.
#include <optional>
#include <string>
#include <vector>

#include "core/placement.h"
#include "tests/parity.h"

namespace qvl::parity {

namespace {

PlacementProbe probe_of(double mapped, double owned, double huge, bool huge_possible) {
  PlacementProbe p;
  p.gbps[static_cast<int>(Placement::Mmap)] = mapped;
  p.gbps[static_cast<int>(Placement::Owned)] = owned;
  p.gbps[static_cast<int>(Placement::Huge)] = huge_possible ? huge : 0;
  p.huge_possible = huge_possible;
  p.thp = huge_possible ? "madvise" : "never";
  return p;
}

struct Case {
  std::string what;
  std::optional<Placement> requested;
  double mapped, owned, huge;
  bool huge_possible;
  bool copy;
  Pages pages;
};

}  // namespace

std::vector<Result> parity_placement(uint64_t /*seed*/) {
  const std::vector<Case> cases = {
      {"auto, huge pages 5% slower than 4 KiB ones: huge (within kHugeLoss)", std::nullopt, 50, 100, 95, true, true, Pages::Huge},
      {"auto, huge pages 20% slower: 4 KiB", std::nullopt, 50, 100, 80, true, true, Pages::Small},
      {"auto, huge pages faster: huge", std::nullopt, 50, 90, 100, true, true, Pages::Huge},
      {"auto, THP off: 4 KiB", std::nullopt, 50, 100, 0, false, true, Pages::Small},
      {"auto, the mapping as fast as huge pages: copied into them (its 4 KiB pages meet page-table scans)", std::nullopt, 100, 95, 100, true, true, Pages::Huge},
      {"auto, the mapping 20% faster than huge pages: stays mapped", std::nullopt, 120, 95, 100, true, false, Pages::Huge},
      {"auto, 4 KiB pages preferred, owned 5% faster than the mapping: stays mapped", std::nullopt, 95, 100, 80, true, false, Pages::Small},
      {"auto, THP off, owned 5% faster than the mapping: stays mapped", std::nullopt, 95, 100, 0, false, false, Pages::Small},
      {"auto, THP off, owned 20% faster than the mapping: copied", std::nullopt, 80, 96, 0, false, true, Pages::Small},
      {"auto, owned 20% faster than the mapping: copied", std::nullopt, 80, 96, 100, true, true, Pages::Huge},
      {"mmap asked: stays mapped, converted weights in the preferred pages", Placement::Mmap, 50, 100, 80, true, false, Pages::Small},
      {"owned asked: copied, 4 KiB pages however huge ones read", Placement::Owned, 100, 50, 120, true, true, Pages::Small},
      {"huge asked: copied, huge pages however 4 KiB ones read", Placement::Huge, 100, 120, 50, true, true, Pages::Huge},
      {"huge asked with THP off: 4 KiB pages", Placement::Huge, 100, 50, 0, false, true, Pages::Small},
  };
  std::vector<Result> out;
  for (const Case& c : cases) {
    out.push_back(expect_accepted("placement", c.what, [&] {
      const PlacementChoice got = choose_placement(c.requested, probe_of(c.mapped, c.owned, c.huge, c.huge_possible));
      if (got.copy_stored != c.copy) fail(ErrorCode::Native, std::string("copy_stored is ") + (got.copy_stored ? "true" : "false"));
      if (got.pages != c.pages) fail(ErrorCode::Native, std::string("pages are ") + (got.pages == Pages::Huge ? "huge" : "4 KiB"));
    }));
  }
  return out;
}

}  // namespace qvl::parity
