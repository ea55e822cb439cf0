// embind glue: one class, CoreLayer, that the JS wrapper drives. Not a
// public API: users see only index.js.
//
// Data crosses the boundary through slots: wasm-heap buffers owned here,
// grown when a call needs more and never shrunk, so steady-state calls
// allocate nothing. JS asks admit() whether a call fits the heap, sizes
// every slot it will write (reserve), then takes views (view) and fills
// them, calls forward, then takes fresh views of the result slots and copies
// them out. Any call that may allocate detaches older views, which is why
// views are always taken after the last reserve.
//
// No C++ exception crosses into JS: every entry that can throw runs inside
// guard(), which returns a Status and keeps the message for error(), so the
// wrapper raises TypeError or RangeError with the core's own words.
//
// The numbers both sides use (slot ids, flag bits, statuses) are defined
// here once and handed to JS by codes().
#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>
#include <malloc.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MHA_ADDRESS_SANITIZER 1
#include <sanitizer/allocator_interface.h>
#endif
#endif
#ifndef MHA_ADDRESS_SANITIZER
#define MHA_ADDRESS_SANITIZER 0
#endif

#include <array>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "core_cache.hpp"
#include "config_of.hpp"
#include "glue.hpp"
#include "mha.hpp"

namespace mha_glue {


// Slot ids.
enum Slot : int {
  kQuery, kKey, kValue,              // float32 inputs
  kKeyPaddingBlocked, kAttnBlocked,  // uint8 masks
  kKeyPaddingAdditive, kAttnAdditive,
  kValidLens, kPositions,            // int32
  kParameter,                        // float32, one parameter in transit
  kOutput, kWeights, kHeads, kConcat,  // float32 results
  kSlotCount
};
constexpr const char* kSlotNames[kSlotCount] = {
    "query", "key", "value", "keyPaddingBlocked", "attnBlocked", "keyPaddingAdditive", "attnAdditive",
    "validLens", "positions", "parameter", "output", "weights", "heads", "concat"};

// forward() flags.
#define MHA_FLAGS(X)                                                                              \
  X(hasKey, 0) X(hasValue, 1) X(keyPaddingBlocked, 2) X(keyPaddingAdditive, 3) X(attnBlocked, 4) \
  X(attnAdditive, 5) X(attnPerHead, 6) X(isCausal, 7) X(validLensPerBatch, 8) X(validLensPerQuery, 9) \
  X(weightsAverage, 10) X(weightsPerHead, 11) X(fullyMaskedNaN, 12) X(wantHeads, 13) X(wantConcat, 14)  \
  X(hasPositions, 15) X(bottomRight, 16) X(attnPerBatch, 17)
struct Flag {
#define MHA_FLAG_BIT(name, bit) static constexpr int name = 1 << bit;
  MHA_FLAGS(MHA_FLAG_BIT)
#undef MHA_FLAG_BIT
};

bool is_byte_slot(int slot) { return slot == kKeyPaddingBlocked || slot == kAttnBlocked; }
bool is_int_slot(int slot) { return slot == kValidLens || slot == kPositions; }

// CoreLayer objects alive now: the leak tests' count.
int live_layers = 0;

class CoreLayer {
 public:
  CoreLayer() { ++live_layers; }
  ~CoreLayer() { --live_layers; }
  CoreLayer(const CoreLayer&) = delete;
  CoreLayer& operator=(const CoreLayer&) = delete;

  // Makes the layer from the configuration index.js checked (its field
  // names; every field present).
  int configure(emscripten::val config) {
    return guard(error_, [&] {
      const mha::Config c = config_of(config);
      admit_bytes(mha::MultiheadAttention::layer_bytes(mha::checked_config(c)), "a layer of this size");
      const std::int64_t seed = whole(number_field(config, "seed"), "seed");
      layer_ = std::make_unique<mha::MultiheadAttention>(c, std::uint64_t(seed));
    });
  }

  std::string error() const { return error_; }

  // The cache (kind 1) or encoder memory (kind 2) of the next admit() and
  // forward(), until detach().
  void attach(CoreCache& source, int kind) {
    cache_ = kind == 1 ? &source : nullptr;
    memory_ = kind == 2 ? &source : nullptr;
  }
  void detach() { cache_ = memory_ = nullptr; }

  // Projects the key slot's encoder output [B, M, kdim] into `memory`.
  int projectMemory(CoreCache& memory, double batch, double length) {
    return guard(error_, [&] {
      layer().project_memory(input(kKey), whole(batch, "batch"), whole(length, "length"), memory.get());
    });
  }

  mha::MultiheadAttention& layer() const {
    if (!layer_) throw mha::Error(mha::Error::Kind::type, "the layer is not configured");
    return *layer_;
  }

  // Results go to `result_` (a JS value), so that the call can return a Status.
  int parameterNames() {
    return guard(error_, [&] {
      emscripten::val names = emscripten::val::array();
      for (const auto& n : layer().parameter_names()) names.call<void>("push", n);
      result_ = names;
    });
  }

  int parameterShape(const std::string& name) {
    return guard(error_, [&] {
      emscripten::val shape = emscripten::val::array();
      for (auto d : layer().parameter_shape(name)) shape.call<void>("push", double(d));
      result_ = shape;
    });
  }

  // The named parameter's values (a reduced weight's dequantized), as a
  // Float32Array of JS's own: the copy the core makes lives only here.
  int parameterValues(const std::string& name) {
    return guard(error_, [&] {
      const std::vector<float> v = layer().parameter(name);
      result_ = emscripten::val::global("Float32Array").new_(emscripten::typed_memory_view(v.size(), v.data()));
    });
  }

  // Bytes the layer's weights hold, in their stored formats.
  double weightBytes() { return layer_ ? double(layer_->weight_bytes()) : 0.0; }

  // The value the last successful parameterNames/Shape/View produced.
  emscripten::val result() { return std::exchange(result_, emscripten::val::undefined()); }

  // Copies `count` floats from the parameter slot into the named parameter
  // (store), or only checks that they may be (!store).
  int setParameter(const std::string& name, double count, bool store) {
    return guard(error_, [&] {
      if (!(count >= 0 && count <= double(slots_f32_[kParameter].size())))
        throw mha::Error(mha::Error::Kind::range, "parameter slot holds fewer than " + std::to_string(count) + " values");
      if (store) layer().set_parameter(name, slots_f32_[kParameter].data(), std::size_t(count));
      else layer().check_parameter(name, slots_f32_[kParameter].data(), std::size_t(count));
    });
  }

  // S, the keys a call with key_len keys attends to (plus the extra keys).
  // Cannot throw: JS asks only of a configured layer.
  double sourceLen(double key_len) const {
    return layer_ && key_len >= 0 && key_len <= 4294967295.0 ? double(layer_->source_len(std::int64_t(key_len))) : 0;
  }

  // Whether a forward call of this shape fits the heap: every slot it
  // writes and the layer's own buffers, counted before anything is
  // allocated. A call only grows what is smaller than it needs.
  int admit(double batch, double query_len, double key_len, int flags) {
    return guard(error_, [&] {
      const std::int64_t b = whole(batch, "batch"), lq = whole(query_len, "query_len"), lk = whole(key_len, "key_len");
      // Keys attended: with a cache its held ones and the call's (at most
      // its capacity), with a memory its frames.
      const std::int64_t keys = cache_ ? std::min(cache_->get().held() + lq, cache_->get().capacity())
                                : memory_ ? memory_->get().held() : lk;
      std::uint64_t bytes = layer().forward_growth_bytes(b, lq, keys,
                                                         !(flags & (Flag::hasKey | Flag::hasValue)) && !memory_,
                                                         need_weights_of(flags));
      const Counts need = slot_counts(b, lq, lk, flags);
      for (int slot = 0; slot < kSlotCount; ++slot)
        if (need[slot] > held(slot)) bytes += (need[slot] - held(slot)) * element_bytes(slot);
      admit_bytes(bytes, "this call");
    });
  }

  // Grows a slot to hold `count` elements.
  int reserve(int slot, double count) {
    return guard(error_, [&] {
      if (slot < 0 || slot >= kSlotCount) throw mha::Error(mha::Error::Kind::range, "no such slot");
      if (!(count >= 0 && count <= 9007199254740992.0))
        throw mha::Error(mha::Error::Kind::range, std::string(kSlotNames[slot]) + ": impossible size");
      if (std::uint64_t(count) > held(slot))
        admit_bytes((std::uint64_t(count) - held(slot)) * element_bytes(slot),
                    std::string("the ") + kSlotNames[slot] + " buffer");
      const std::size_t n = std::size_t(count);
      if (is_byte_slot(slot)) {
        if (slots_u8_[slot].size() < n) slots_u8_[slot].resize(n);
      } else if (is_int_slot(slot)) {
        if (ints_[slot].size() < n) ints_[slot].resize(n);
      } else {
        if (slots_f32_[slot].size() < n) slots_f32_[slot].resize(n);
      }
      lengths_[slot] = n;
    });
  }

  // A typed-array view of a slot's first reserved `count` elements. Cannot
  // throw: it only reads sizes set by reserve() or forward().
  emscripten::val view(int slot) {
    if (slot < 0 || slot >= kSlotCount) return emscripten::val::undefined();
    const std::size_t n = lengths_[slot];
    if (is_byte_slot(slot)) return emscripten::val(emscripten::typed_memory_view(n, slots_u8_[slot].data()));
    if (is_int_slot(slot)) return emscripten::val(emscripten::typed_memory_view(n, ints_[slot].data()));
    return emscripten::val(emscripten::typed_memory_view(n, slots_f32_[slot].data()));
  }

  // Runs the layer on the input slots; sizes and fills the result slots.
  int forward(double batch, double query_len, double key_len, int flags) {
    return guard(error_, [&] {
      mha::ForwardInput in;
      in.batch = whole(batch, "batch");
      in.query_len = whole(query_len, "query_len");
      in.key_len = whole(key_len, "key_len");
      in.query = input(kQuery);
      in.key = (flags & Flag::hasKey) ? input(kKey) : nullptr;
      in.value = (flags & Flag::hasValue) ? input(kValue) : nullptr;
      in.cache = cache_ ? &cache_->get() : nullptr;
      in.memory = memory_ ? &memory_->get() : nullptr;

      mha::ForwardOptions o;
      if (flags & Flag::keyPaddingBlocked) o.key_padding.blocked = data(slots_u8_[kKeyPaddingBlocked]);
      if (flags & Flag::keyPaddingAdditive) o.key_padding.additive = data(slots_f32_[kKeyPaddingAdditive]);
      if (flags & Flag::attnBlocked) o.attn.blocked = data(slots_u8_[kAttnBlocked]);
      if (flags & Flag::attnAdditive) o.attn.additive = data(slots_f32_[kAttnAdditive]);
      o.attn_per_head = (flags & Flag::attnPerHead) != 0;
      o.is_causal = (flags & Flag::isCausal) != 0;
      if (flags & (Flag::validLensPerBatch | Flag::validLensPerQuery)) o.valid_lens = data(ints_[kValidLens]);
      o.valid_lens_per_query = (flags & Flag::validLensPerQuery) != 0;
      if (flags & Flag::hasPositions) o.positions = data(ints_[kPositions]);
      o.bottom_right = (flags & Flag::bottomRight) != 0;
      o.attn_per_batch = (flags & Flag::attnPerBatch) != 0;
      o.need_weights = need_weights_of(flags);
      o.fully_masked_rows = (flags & Flag::fullyMaskedNaN) ? mha::FullyMaskedRows::nan : mha::FullyMaskedRows::zero;

      const Counts need = slot_counts(in.batch, in.query_len, in.key_len, flags);
      for (int slot = kOutput; slot < kSlotCount; ++slot) grow(slot, need[slot]);
      mha::ForwardOutputs res;
      res.output = slots_f32_[kOutput].data();
      res.weights = lengths_[kWeights] ? slots_f32_[kWeights].data() : nullptr;
      res.heads = (flags & Flag::wantHeads) ? slots_f32_[kHeads].data() : nullptr;
      res.concat = (flags & Flag::wantConcat) ? slots_f32_[kConcat].data() : nullptr;
      layer().forward(in, o, res);
    });
  }

 private:
  using Counts = std::array<std::uint64_t, kSlotCount>;

  static mha::NeedWeights need_weights_of(int flags) {
    return (flags & Flag::weightsPerHead)  ? mha::NeedWeights::per_head
           : (flags & Flag::weightsAverage) ? mha::NeedWeights::average
                                            : mha::NeedWeights::none;
  }

  // The elements each slot holds for a call of this shape and these flags
  // (the table in mha.hpp); 0 for slots the call does not use.
  Counts slot_counts(std::int64_t batch, std::int64_t query_len, std::int64_t key_len, int flags) const {
    const mha::Config& c = layer().config();
    // Columns of the weights and masks: S, or with a cache every position
    // since its reset, or a memory's frames.
    const std::uint64_t columns = cache_    ? std::uint64_t(cache_->get().length() + query_len)
                                  : memory_ ? std::uint64_t(memory_->get().held())
                                            : std::uint64_t(layer().source_len(key_len));
    const std::uint64_t b = std::uint64_t(batch), lq = std::uint64_t(query_len);
    const std::uint64_t lk = cache_ || memory_ ? columns : std::uint64_t(key_len);
    const std::uint64_t e = std::uint64_t(c.embed_dim), h = std::uint64_t(c.num_heads);
    const std::uint64_t rows = b * lq, s = columns;
    const std::uint64_t width = h * std::uint64_t(c.head_dim);  // H*d of the heads and concat
    const std::uint64_t attn = (flags & Flag::attnPerHead)    ? b * h * lq * lk
                               : (flags & Flag::attnPerBatch) ? b * lq * lk
                                                              : lq * lk;
    const auto nw = need_weights_of(flags);
    Counts n{};
    n[kQuery] = rows * e;
    n[kKey] = (flags & Flag::hasKey) ? b * lk * std::uint64_t(c.kdim) : 0;
    n[kValue] = (flags & Flag::hasValue) ? b * lk * std::uint64_t(c.vdim) : 0;
    n[kKeyPaddingBlocked] = (flags & Flag::keyPaddingBlocked) ? b * lk : 0;
    n[kKeyPaddingAdditive] = (flags & Flag::keyPaddingAdditive) ? b * lk : 0;
    n[kAttnBlocked] = (flags & Flag::attnBlocked) ? attn : 0;
    n[kAttnAdditive] = (flags & Flag::attnAdditive) ? attn : 0;
    n[kValidLens] = (flags & Flag::validLensPerQuery) ? rows : (flags & Flag::validLensPerBatch) ? b : 0;
    n[kPositions] = (flags & Flag::hasPositions) ? rows : 0;
    n[kOutput] = rows * e;
    n[kWeights] = nw == mha::NeedWeights::none ? 0 : nw == mha::NeedWeights::per_head ? rows * h * s : rows * s;
    n[kHeads] = (flags & Flag::wantHeads) ? rows * width : 0;
    n[kConcat] = (flags & Flag::wantConcat) ? rows * width : 0;
    return n;
  }

  // Elements a slot holds now, and the bytes of one.
  std::uint64_t held(int slot) const {
    return is_byte_slot(slot) ? slots_u8_[slot].size() : is_int_slot(slot) ? ints_[slot].size() : slots_f32_[slot].size();
  }
  static std::uint64_t element_bytes(int slot) { return is_byte_slot(slot) ? 1 : 4; }

  // A slot's data; never null, even when empty (a call with B = 0 or L = 0
  // writes nothing), because null means "not given" to the core.
  template <typename T>
  static const T* data(const std::vector<T>& slot) {
    static const T kEmpty{};
    return slot.empty() ? &kEmpty : slot.data();
  }

  // An input slot's data; never null, even when empty, because a null key or
  // value means "use the query" to the core.
  const float* input(int slot) const {
    static const float kEmpty = 0.0f;
    return slots_f32_[slot].empty() ? &kEmpty : slots_f32_[slot].data();
  }

  void grow(int slot, std::uint64_t n) {
    if (n > slots_f32_[slot].max_size())  // admit() refuses such calls; forward() alone must not wrap
      throw mha::Error(mha::Error::Kind::range, std::string(kSlotNames[slot]) + ": more than wasm32 can address");
    if (slots_f32_[slot].size() < n) slots_f32_[slot].resize(std::size_t(n));
    lengths_[slot] = std::size_t(n);
  }

  std::unique_ptr<mha::MultiheadAttention> layer_;
  CoreCache* cache_ = nullptr;
  CoreCache* memory_ = nullptr;
  std::string error_;
  emscripten::val result_ = emscripten::val::undefined();
  std::vector<float> slots_f32_[kSlotCount];
  std::vector<std::uint8_t> slots_u8_[kSlotCount];
  std::vector<std::int32_t> ints_[kSlotCount];
  std::size_t lengths_[kSlotCount] = {};
};

int CoreCache::make(CoreLayer& layer, double batch, double capacity) {
  return guard(error_, [&] {
    const std::int64_t b = whole(batch, "batch"), c = whole(capacity, "capacity");
    admit_bytes(mha::KVCache::bytes(layer.layer().config(), b, c), "a cache of this size");
    cache_ = std::make_unique<mha::KVCache>(layer.layer(), b, c);
  });
}

// The numbers JS and C++ exchange, from their one definition above.
emscripten::val codes() {
  using emscripten::val;
  val slots = val::object(), flags = val::object(), statuses = val::object();
  for (int s = 0; s < kSlotCount; ++s) slots.set(kSlotNames[s], s);
#define MHA_FLAG_CODE(name, bit) flags.set(#name, Flag::name);
  MHA_FLAGS(MHA_FLAG_CODE)
#undef MHA_FLAG_CODE
  statuses.set("ok", int(kOk));
  statuses.set("typeError", int(kTypeError));
  statuses.set("rangeError", int(kRangeError));
  val all = val::object();
  all.set("slot", slots);
  all.set("flag", flags);
  all.set("status", statuses);
  return all;
}

// Bytes the wasm heap spans now (grows, never shrinks).
double heapBytes() { return double(emscripten_get_heap_size()); }
// Bytes malloc has handed out and not had back: layers' weights, caches,
// scratch; what weightDtype and a cache's capacity change. (AddressSanitizer,
// in the test build, has an allocator of its own, which keeps the count.)
double allocatedBytes() {
#if MHA_ADDRESS_SANITIZER
  return double(__sanitizer_get_current_allocated_bytes());
#else
  return double(mallinfo().uordblks);
#endif
}
int liveLayers() { return live_layers; }
int liveCaches() { return live_caches; }
// Threads for every layer, clamped to what this build can run; returns the count in use.
// A thread that cannot be started leaves the pool as it was.
int setThreads(int threads) {
  try {
    mha::set_num_threads(threads);
  } catch (...) {
  }
  return mha::num_threads();
}
// A WebAssembly trap on purpose: the tests' way to prove that a module which
// traps is retired and replaced (loader.js), since no real input traps.
void trapForTesting() { __builtin_trap(); }

}  // namespace mha_glue

using namespace mha_glue;

EMSCRIPTEN_BINDINGS(mha_core) {
  emscripten::class_<CoreLayer>("CoreLayer")
      .constructor<>()
      .function("configure", &CoreLayer::configure)
      .function("error", &CoreLayer::error)
      .function("parameterNames", &CoreLayer::parameterNames)
      .function("parameterShape", &CoreLayer::parameterShape)
      .function("parameterValues", &CoreLayer::parameterValues)
      .function("weightBytes", &CoreLayer::weightBytes)
      .function("result", &CoreLayer::result)
      .function("setParameter", &CoreLayer::setParameter)
      .function("sourceLen", &CoreLayer::sourceLen)
      .function("admit", &CoreLayer::admit)
      .function("reserve", &CoreLayer::reserve)
      .function("view", &CoreLayer::view)
      .function("forward", &CoreLayer::forward)
      .function("attach", &CoreLayer::attach)
      .function("detach", &CoreLayer::detach)
      .function("projectMemory", &CoreLayer::projectMemory);
  emscripten::class_<CoreCache>("CoreCache")
      .constructor<>()
      .function("make", &CoreCache::make)
      .function("error", &CoreCache::error)
      .function("length", &CoreCache::length)
      .function("held", &CoreCache::held)
      .function("capacity", &CoreCache::capacity)
      .function("batch", &CoreCache::batch)
      .function("reset", &CoreCache::reset)
      .function("truncate", &CoreCache::truncate);
  emscripten::function("codes", &codes);
  emscripten::function("heapBytes", &heapBytes);
  emscripten::function("allocatedBytes", &allocatedBytes);
  emscripten::function("liveLayers", &liveLayers);
  emscripten::function("liveCaches", &liveCaches);
  emscripten::function("setThreads", &setThreads);
  emscripten::function("maxThreads", &mha::max_threads);
  emscripten::function("numThreads", &mha::num_threads);
  emscripten::function("trapForTesting", &trapForTesting);
}
