// Where the language model's large weights live, decided by measuring on the machine in use.
// Decode streams every weight once per token, so its speed is the read bandwidth of the memory
// the weights sit in, and that differs by placement and by machine: a page-cache mapping of the
// checkpoint (4 KiB pages the kernel shares), owned memory in 4 KiB pages, or owned memory in
// transparent huge pages. On AMD Zen 5 owned 4 KiB pages were fastest and huge pages slower; on
// Intel machines the reverse. So the probe reads each once per process and the loader picks.
// The probe's steady reads miss one cost of 4 KiB pages: whatever walks the page tables while
// decode runs (a VM's memory monitor, NUMA balancing) stalls it in proportion to the pages mapped;
// so huge pages are kept unless 4 KiB pages (owned, or the mapping's) read clearly faster (kHugeLoss).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/storage.h"
#include "core/tensor.h"
#include "core/threadpool.h"

namespace qvl {

enum class Placement { Mmap = 0, Owned = 1, Huge = 2 };
constexpr Placement kPlacements[] = {Placement::Mmap, Placement::Owned, Placement::Huge};
const char* placement_name(Placement p);  // "mmap", "owned", "huge"
bool placement_from_name(const std::string& name, Placement* out);

// Read bandwidths of the three placements, measured with decode's access pattern: every thread
// of the default pool streams its own contiguous share of one buffer, from DRAM (the buffer's
// cache lines are flushed before each timed read). Rounds alternate the placements, so a burst of
// load from other processes lowers all three alike; each placement's figure is its best round.
struct PlacementProbe {
  double gbps[3] = {0, 0, 0};      // best GB/s, indexed by Placement; huge is 0 when THP is off
  std::vector<double> runs[3];     // every round's GB/s
  std::string thp;                 // /sys/kernel/mm/transparent_hugepage/enabled: "always", "madvise", "never" or "unknown"
  bool huge_possible = false;      // THP "always" or "madvise"
  std::string mapped_from;         // the page-cache file read: the folder it was made in ("/tmp"; "memfd" when
                                   // no folder took one), or a checkpoint file (checkpoint_probe)
  size_t bytes = 0;                // each buffer's size
  int threads = 0;
  double seconds = 0;              // the whole probe, buffers made and freed included
  Placement fastest = Placement::Mmap;
};

// Measured on the first call with a file made for it (0.2-0.4 s on a loaded 2-core VM, mostly
// faulting in the three buffers and the rounds' reads), then the same result for the life of the
// process.
const PlacementProbe& placement_probe();

// The same three placements measured for a load, the mapped one on `bytes` at `p`: a loaded
// checkpoint's own mapped pages (the first probe-sized window of them), `from` naming the file.
// How the page cache holds a file (4 KiB pages, or large folios the kernel maps 2 MiB at a time)
// depends on the file's history, so a file made for the probe may not read like the model. The
// owned buffers are made again so that the rounds still alternate. The process's probe when the
// window is smaller than its buffers.
PlacementProbe checkpoint_probe(const void* p, size_t bytes, const std::string& from);

// What the loader does with a part's large weights.
struct PlacementChoice {
  bool copy_stored = false;  // copy weights kept as stored out of the mapping into owned memory
  Pages pages = Pages::Huge;  // the pages of owned weights (copies and weights converted at load)
};

// Where owned weights get 4 KiB pages, copying only pays when owned memory reads at least this
// much faster than the mapping: a copy costs load time and briefly holds the weights in the page
// cache and in the process. Where they get huge pages, the mapping (4 KiB pages, like owned small
// ones exposed to page-table scans) is left unless it reads kHugeLoss faster than huge pages: on
// the Zen 5 VM below, probe figures alike (mapped 90-94, huge 93-95 GB/s), bf16 2B decode from
// the mapping ran 11.0-14.7 tokens/s and from huge pages 15.2-19.8 (alternating loads, 3 each).
constexpr double kCopyGain = 1.10;

// Owned weights go in huge pages unless 4 KiB pages read over this much faster. On a 2-core Zen 5
// VM whose kernel samples page accessed bits every 500 ms (DAMON), the probe read the two alike
// (95.3 and 94.9 GB/s) and the decode steps' medians matched, but with 4 KiB pages every few
// steps took 2-9x the median: over 60-100 steps the mean was 1.1-1.8x that in huge pages (q8 and
// bf16 2B, alternating loads).
constexpr double kHugeLoss = 1.10;

// `requested`: a placement asked for, or none to choose from the probe (copied into huge pages
// unless the mapping or 4 KiB pages read kHugeLoss faster; with 4 KiB pages, copied when they
// read kCopyGain faster than the mapping). Asking for 'mmap' keeps
// stored weights mapped; weights converted at load are owned whatever is asked, in huge pages
// (unless 4 KiB pages read kHugeLoss faster, or 'owned' or 'huge' says which). 'huge' without THP
// gets 4 KiB pages.
PlacementChoice choose_placement(std::optional<Placement> requested, const PlacementProbe& probe);

// Where a storage's bytes are: Mmap for a mapped file, Owned or Huge for owned memory by the pages
// it asked for; nothing for other kinds (borrowed, arena).
std::optional<Placement> placement_of(const Storage& s);

// An owned copy of a contiguous tensor in `pages`, copied in parallel on `pool` (each thread
// faults in the pages it writes).
Tensor owned_copy(const Tensor& t, Pages pages, ThreadPool& pool);

}  // namespace qvl
