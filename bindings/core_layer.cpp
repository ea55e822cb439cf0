// embind glue: one class, CoreLayer, that the JS wrapper (index.js) drives.
// Not a public API: users see only index.js.
//
// Data crosses the boundary through slots: wasm-heap buffers owned here,
// grown when a call needs more and never shrunk, so steady-state calls
// allocate nothing. JS sizes every slot it will write (reserve), then takes
// views (view) and fills them, calls forward, then takes fresh views of the
// result slots and copies them out. Any call that may allocate detaches older
// views, which is why views are always taken after the last reserve.
//
// No C++ exception crosses into JS: each entry returns a Status and keeps the
// message for error(), so the wrapper can raise TypeError or RangeError with
// the core's own words.
#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "mha.hpp"

namespace {

enum Status : int { kOk = 0, kTypeError = 1, kRangeError = 2 };

// Slot ids; index.js mirrors this list.
enum Slot : int {
  kQuery, kKey, kValue,              // float32 inputs
  kKeyPaddingBlocked, kAttnBlocked,  // uint8 masks
  kKeyPaddingAdditive, kAttnAdditive,
  kValidLens,                        // int32
  kParameter,                        // float32, one parameter in transit
  kOutput, kWeights, kHeads, kConcat,  // float32 results
  kSlotCount
};

// forward() flags; index.js mirrors these bits.
enum Flag : int {
  kHasKey = 1 << 0,
  kHasValue = 1 << 1,
  kKeyPaddingIsBlocked = 1 << 2,
  kKeyPaddingIsAdditive = 1 << 3,
  kAttnIsBlocked = 1 << 4,
  kAttnIsAdditive = 1 << 5,
  kAttnPerHead = 1 << 6,
  kIsCausal = 1 << 7,
  kValidLensPerBatch = 1 << 8,
  kValidLensPerQuery = 1 << 9,
  kWeightsAverage = 1 << 10,
  kWeightsPerHead = 1 << 11,
  kFullyMaskedNaN = 1 << 12,
  kWantHeads = 1 << 13,
  kWantConcat = 1 << 14,
};

// CoreLayer objects alive now: the leak tests' count of embind handles.
int live_layers = 0;

class CoreLayer {
 public:
  CoreLayer() { ++live_layers; }
  ~CoreLayer() { --live_layers; }
  CoreLayer(const CoreLayer&) = delete;
  CoreLayer& operator=(const CoreLayer&) = delete;

  int configure(double embed_dim, double num_heads, double kdim, double vdim, bool bias,
                bool add_bias_kv, bool add_zero_attn, double seed) {
    return guard([&] {
      mha::Config c;
      c.embed_dim = std::int64_t(embed_dim);
      c.num_heads = std::int64_t(num_heads);
      c.kdim = std::int64_t(kdim);
      c.vdim = std::int64_t(vdim);
      c.bias = bias;
      c.add_bias_kv = add_bias_kv;
      c.add_zero_attn = add_zero_attn;
      layer_ = std::make_unique<mha::MultiheadAttention>(c, std::uint64_t(seed));
    });
  }

  std::string error() const { return error_; }

  emscripten::val parameterNames() const {
    emscripten::val names = emscripten::val::array();
    for (const auto& n : layer_->parameter_names()) names.call<void>("push", n);
    return names;
  }

  emscripten::val parameterShape(const std::string& name) const {
    emscripten::val shape = emscripten::val::array();
    for (auto d : layer_->parameter_shape(name)) shape.call<void>("push", double(d));
    return shape;
  }

  // Copies `count` floats from the parameter slot into the named parameter.
  int setParameter(const std::string& name, double count) {
    return guard([&] {
      const std::size_t n = std::size_t(count);
      if (n > slots_f32_[kParameter].size())
        throw mha::Error(mha::Error::Kind::range, "parameter slot holds fewer than " +
                                                      std::to_string(n) + " values");
      layer_->set_parameter(name, slots_f32_[kParameter].data(), n);
    });
  }

  // A view of the named parameter's values; the caller copies it at once.
  emscripten::val parameterView(const std::string& name) const {
    const auto& v = layer_->parameter(name);
    return emscripten::val(emscripten::typed_memory_view(v.size(), v.data()));
  }

  // Grows a slot to hold `count` elements.
  int reserve(int slot, double count) {
    return guard([&] {
      const std::size_t n = std::size_t(count);
      if (slot == kKeyPaddingBlocked || slot == kAttnBlocked) {
        if (slots_u8_[slot].size() < n) slots_u8_[slot].resize(n);
      } else if (slot == kValidLens) {
        if (valid_lens_.size() < n) valid_lens_.resize(n);
      } else {
        if (slots_f32_[slot].size() < n) slots_f32_[slot].resize(n);
      }
      lengths_[slot] = n;
    });
  }

  // A typed-array view of a slot's first reserved `count` elements.
  emscripten::val view(int slot) {
    const std::size_t n = lengths_[slot];
    if (slot == kKeyPaddingBlocked || slot == kAttnBlocked)
      return emscripten::val(emscripten::typed_memory_view(n, slots_u8_[slot].data()));
    if (slot == kValidLens)
      return emscripten::val(emscripten::typed_memory_view(n, valid_lens_.data()));
    return emscripten::val(emscripten::typed_memory_view(n, slots_f32_[slot].data()));
  }

  // Runs the layer on the input slots; sizes and fills the result slots.
  int forward(double batch, double query_len, double key_len, int flags) {
    return guard([&] {
      mha::ForwardInput in;
      in.batch = std::int64_t(batch);
      in.query_len = std::int64_t(query_len);
      in.key_len = std::int64_t(key_len);
      in.query = input(kQuery);
      in.key = (flags & kHasKey) ? input(kKey) : nullptr;
      in.value = (flags & kHasValue) ? input(kValue) : nullptr;

      mha::ForwardOptions o;
      if (flags & kKeyPaddingIsBlocked) o.key_padding.blocked = slots_u8_[kKeyPaddingBlocked].data();
      if (flags & kKeyPaddingIsAdditive) o.key_padding.additive = slots_f32_[kKeyPaddingAdditive].data();
      if (flags & kAttnIsBlocked) o.attn.blocked = slots_u8_[kAttnBlocked].data();
      if (flags & kAttnIsAdditive) o.attn.additive = slots_f32_[kAttnAdditive].data();
      o.attn_per_head = (flags & kAttnPerHead) != 0;
      o.is_causal = (flags & kIsCausal) != 0;
      if (flags & (kValidLensPerBatch | kValidLensPerQuery)) o.valid_lens = valid_lens_.data();
      o.valid_lens_per_query = (flags & kValidLensPerQuery) != 0;
      o.need_weights = (flags & kWeightsPerHead)  ? mha::NeedWeights::per_head
                       : (flags & kWeightsAverage) ? mha::NeedWeights::average
                                                   : mha::NeedWeights::none;
      o.fully_masked_rows =
          (flags & kFullyMaskedNaN) ? mha::FullyMaskedRows::nan : mha::FullyMaskedRows::zero;

      const std::size_t e = std::size_t(layer_->config().embed_dim);
      const std::size_t h = std::size_t(layer_->config().num_heads);
      const std::size_t rows = std::size_t(in.batch) * std::size_t(in.query_len);
      const std::size_t s = std::size_t(layer_->source_len(in.key_len));
      grow(kOutput, rows * e);
      grow(kWeights, o.need_weights == mha::NeedWeights::none       ? 0
                     : o.need_weights == mha::NeedWeights::per_head ? rows * h * s
                                                                    : rows * s);
      grow(kHeads, (flags & kWantHeads) ? rows * e : 0);
      grow(kConcat, (flags & kWantConcat) ? rows * e : 0);

      mha::ForwardOutputs out;
      out.output = slots_f32_[kOutput].data();
      out.weights = lengths_[kWeights] ? slots_f32_[kWeights].data() : nullptr;
      out.heads = (flags & kWantHeads) ? slots_f32_[kHeads].data() : nullptr;
      out.concat = (flags & kWantConcat) ? slots_f32_[kConcat].data() : nullptr;
      layer_->forward(in, o, out);
    });
  }

 private:
  // An input slot's data; never null, even when empty, because a null key or
  // value means "use the query" to the core.
  const float* input(int slot) const {
    static const float kEmpty = 0.0f;
    return slots_f32_[slot].empty() ? &kEmpty : slots_f32_[slot].data();
  }

  void grow(int slot, std::size_t n) {
    if (slots_f32_[slot].size() < n) slots_f32_[slot].resize(n);
    lengths_[slot] = n;
  }

  template <typename F>
  int guard(F&& body) {
    error_.clear();
    try {
      body();
      return kOk;
    } catch (const mha::Error& e) {
      error_ = e.what();
      return e.kind() == mha::Error::Kind::type ? kTypeError : kRangeError;
    } catch (const std::bad_alloc&) {
      error_ = "out of memory: the WebAssembly heap could not grow to hold this call's buffers";
      return kRangeError;
    }
  }

  std::unique_ptr<mha::MultiheadAttention> layer_;
  std::string error_;
  std::vector<float> slots_f32_[kSlotCount];
  std::vector<std::uint8_t> slots_u8_[kSlotCount];
  std::vector<std::int32_t> valid_lens_;
  std::size_t lengths_[kSlotCount] = {};
};

// Bytes the wasm heap spans now (grows, never shrinks).
double heapBytes() { return double(emscripten_get_heap_size()); }
int liveLayers() { return live_layers; }
// Threads for every layer, clamped to what this build can run; returns the count in use.
int setThreads(int threads) {
  mha::set_num_threads(threads);
  return mha::num_threads();
}

}  // namespace

EMSCRIPTEN_BINDINGS(mha_core) {
  emscripten::class_<CoreLayer>("CoreLayer")
      .constructor<>()
      .function("configure", &CoreLayer::configure)
      .function("error", &CoreLayer::error)
      .function("parameterNames", &CoreLayer::parameterNames)
      .function("parameterShape", &CoreLayer::parameterShape)
      .function("setParameter", &CoreLayer::setParameter)
      .function("parameterView", &CoreLayer::parameterView)
      .function("reserve", &CoreLayer::reserve)
      .function("view", &CoreLayer::view)
      .function("forward", &CoreLayer::forward);
  emscripten::function("heapBytes", &heapBytes);
  emscripten::function("liveLayers", &liveLayers);
  emscripten::function("setThreads", &setThreads);
  emscripten::function("maxThreads", &mha::max_threads);
  emscripten::function("numThreads", &mha::num_threads);
}
