// The opt-in cache of weights converted at load (loadModel's `weightCache`): one file per
// checkpoint and conversion, named and keyed by TypeScript (checkpoint file names, sizes and
// mtimes, the formats asked for, the library's cache version). Written once, atomically (a temp
// file renamed into place), after a load that converted; read by the next load with the same key
// instead of converting.
//
// Nothing in the file is trusted: the header must carry the expected magic, version and key; every
// entry must name the weight the model asks for next, with its format, shape and group; every
// offset and length must lie inside the file with the sizes that shape implies; and every entry's
// checksum must match its bytes. A file failing any of that is ignored and rewritten. Hits are
// copied (checksummed in the same pass) into owned memory in the pages the placement chose
// (core/placement.h), and the file's pages released: weights stream faster from there than from
// the page cache.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/storage.h"
#include "models/weight_converter.h"

namespace qvl::models {

class WeightCache {
 public:
  WeightCache(std::string path, std::string key);
  // The cached conversion of the next quantized weight, copied into owned memory of `pages`, or
  // false (the caller converts and records).
  bool take(const std::string& name, WeightFormat f, int64_t out, int64_t in, int64_t group, Pages pages,
            ConvertedWeight* c);
  // Every quantized weight, taken or converted, in load order.
  void record(const std::string& name, const ConvertedWeight& c);
  // Writes the file unless every weight came from it. A failed write leaves no file behind and is
  // not an error (the cache is an optimisation); returns whether the file is now current.
  bool finish();
  bool hit() const { return valid_ && taken_ == entries_.size() && taken_ == recorded_.size(); }

 private:
  struct Entry {
    std::string name;
    int32_t format = 0;
    int64_t out = 0, in = 0, group = 0;
    uint64_t off[3] = {0, 0, 0}, len[3] = {0, 0, 0}, sum[3] = {0, 0, 0};  // data, scales, zeros
  };
  void open();
  std::string path_, key_;
  std::shared_ptr<MappedFile> file_;
  std::vector<Entry> entries_;
  bool valid_ = false;
  size_t taken_ = 0;
  std::vector<std::pair<std::string, ConvertedWeight>> recorded_;
};

}  // namespace qvl::models
