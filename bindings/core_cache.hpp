// CoreCache: a layer's key/value cache or encoder memory, owned by JS.
#pragma once

#include <memory>
#include <string>

#include "glue.hpp"
#include "mha.hpp"

namespace mha_glue {

// Caches and memories alive now: the leak tests' count.
inline int live_caches = 0;

class CoreLayer;

// A key/value cache (or an encoder memory) of one layer, owned by JS.
class CoreCache {
 public:
  CoreCache() { ++live_caches; }
  ~CoreCache() { --live_caches; }
  CoreCache(const CoreCache&) = delete;
  CoreCache& operator=(const CoreCache&) = delete;

  int make(CoreLayer& layer, double batch, double capacity);
  std::string error() const { return error_; }
  double length() const { return cache_ ? double(cache_->length()) : 0; }
  double held() const { return cache_ ? double(cache_->held()) : 0; }
  double capacity() const { return cache_ ? double(cache_->capacity()) : 0; }
  double batch() const { return cache_ ? double(cache_->batch()) : 0; }
  int reset() {
    return guard(error_, [&] { get().reset(); });
  }
  int truncate(double length) {
    return guard(error_, [&] { get().truncate(whole(length, "length")); });
  }
  mha::KVCache& get() const {
    if (!cache_) throw mha::Error(mha::Error::Kind::type, "the cache is not made");
    return *cache_;
  }

 private:
  std::unique_ptr<mha::KVCache> cache_;
  std::string error_;
};

}  // namespace mha_glue
