// The opt-in cache of weights converted at load (loadModel's `weightCache`): one file per
// checkpoint and conversion, named and keyed by TypeScript (lib/model/weight-cache.ts: the name
// says which checkpoint and formats, the key which state of its files: sizes, modification and
// change times). Written once, atomically (a temp file renamed into place), after a load that
// converted; read by the next load with the same key instead of converting, and replaced by one
// whose key differs.
//
// Nothing in the file is trusted: the header must carry the expected magic, version and key; every
// entry must name the weight the model asks for next, with its format, shape and group; every
// offset and length must lie inside the file with the sizes that shape implies; and every entry's
// checksum must match its bytes. A file failing any of that is ignored and rewritten. Hits are
// copied (checksummed in the same pass) into owned memory in the pages the placement chose
// (core/placement.h), and the file's pages released: weights stream faster from there than from
// the page cache.
//
// The NaN/infinity scan of the checkpoint (loadModel's `checkFinite`): a file written by a load
// that scanned vouches for the checkpoint tensors its entries were converted from (each the sole
// source of its entry, read nowhere else), so a load that scans skips those, and a hit reads the
// cache file alone, not the checkpoint's quantized tensors too. A vouched tensor the file then
// fails to supply (a bad checksum, an entry out of order) is scanned before it is converted, and
// settle() scans any the load never asked for: every tensor the model reads is scanned or vouched.
// A scanning load that hits a file written without the scan (it vouches for nothing, so the load
// scanned every source) sets the file's flag: later scanning hits skip those tensors.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/storage.h"
#include "models/weight_converter.h"

namespace qvl::models {

class WeightCache {
 public:
  // `scan`: the load's finite scan of one checkpoint tensor (WeightStore::check_finite), or empty
  // when the load does not scan.
  using Scan = std::function<void(const std::string& tensor)>;
  WeightCache(std::string path, std::string key, Scan scan = {});
  // The checkpoint tensors the load's scan may skip (empty unless the file vouches and the load scans).
  const std::set<std::string>& vouched() const { return vouched_; }
  // The cached conversion of the next quantized weight `name`, converted from checkpoint tensor
  // `source` ("" when it has no sole source), copied into owned memory of `pages`; or false (the
  // caller converts and records) after scanning `source` if the load skipped it.
  bool take(const std::string& name, const std::string& source, WeightFormat f, int64_t out, int64_t in,
            int64_t group, Pages pages, ConvertedWeight* c);
  // Every quantized weight, taken or converted, in load order.
  void record(const std::string& name, const std::string& source, const ConvertedWeight& c);
  // Scans the vouched tensors the load neither took from the file nor scanned (once it is built).
  void settle();
  // Writes the file unless every weight came from it (then, after a scanning load, marks it as
  // scanned if it was not). A failed write leaves no file behind and is not an error (the cache is
  // an optimisation); returns whether the file is now current.
  bool finish();
  bool hit() const { return valid_ && taken_ == entries_.size() && taken_ == recorded_.size(); }

 private:
  struct Entry {
    std::string name, source;
    int32_t format = 0;
    int64_t out = 0, in = 0, group = 0;
    uint64_t off[3] = {0, 0, 0}, len[3] = {0, 0, 0}, sum[3] = {0, 0, 0};  // data, scales, zeros
  };
  struct Recorded {
    std::string name, source;
    ConvertedWeight weight;
  };
  void open();
  void scan_skipped(const std::string& source);
  std::string path_, key_;
  Scan scan_;
  std::shared_ptr<MappedFile> file_;
  std::vector<Entry> entries_;
  bool valid_ = false;
  bool scanned_ = false;  // the file's flag: written by a load that scanned
  size_t taken_ = 0;
  std::set<std::string> vouched_, unsettled_;  // unsettled: vouched, neither taken nor scanned yet
  std::vector<Recorded> recorded_;
};

}  // namespace qvl::models
