// A steady stream of calls allocates nothing: once a layer's scratch has
// grown to a shape, a forward pass of that shape makes no heap allocation.
// Every operator new in this executable is counted (its own binary, so the
// replacement touches no other test).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "mha.hpp"

namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

struct Call {
  mha::Config config;
  std::int64_t batch, lq, lk;
  bool cross;
  mha::ForwardOptions options;
  bool heads_and_concat;
};

// Allocations made by the third call of `c` (the first two may grow scratch).
long allocations_in_steady_state(const Call& c) {
  mha::MultiheadAttention layer(c.config, 1);
  const auto& rc = layer.config();
  const std::size_t rows = std::size_t(c.batch * c.lq), e = std::size_t(rc.embed_dim);
  const std::size_t s = std::size_t(layer.source_len(c.lk));
  std::vector<float> query(rows * e, 0.25f), key(std::size_t(c.batch * c.lk * rc.kdim), -0.5f),
      value(std::size_t(c.batch * c.lk * rc.vdim), 0.75f);
  std::vector<float> output(rows * e), weights(rows * s * std::size_t(rc.num_heads)), heads(rows * e),
      concat(rows * e);
  const mha::ForwardInput in{c.batch, c.lq, c.cross ? c.lk : c.lq, query.data(), c.cross ? key.data() : nullptr,
                             c.cross ? value.data() : nullptr};
  const mha::ForwardOutputs out{output.data(),
                                c.options.need_weights == mha::NeedWeights::none ? nullptr : weights.data(),
                                c.heads_and_concat ? heads.data() : nullptr,
                                c.heads_and_concat ? concat.data() : nullptr};
  layer.forward(in, c.options, out);
  layer.forward(in, c.options, out);
  const long before = allocations.load();
  layer.forward(in, c.options, out);
  return allocations.load() - before;
}

TEST(Allocation, SteadyStateCallsAllocateNothingOnEitherAttentionPathAtAnyThreadCount) {
  std::vector<std::uint8_t> padding(2 * 37, 0);
  for (std::size_t j = 0; j < padding.size(); j += 5) padding[j] = 1;
  mha::ForwardOptions masked;
  masked.is_causal = true;
  masked.key_padding.blocked = padding.data();
  masked.need_weights = mha::NeedWeights::per_head;
  mha::ForwardOptions averaged;
  averaged.need_weights = mha::NeedWeights::average;

  const Call calls[] = {
      {{16, 8, 0, 0, true, false, false}, 3, 4, 4, false, {}, false},          // the teaching shape: narrow heads
      {{64, 4, 0, 0, true, true, true}, 2, 37, 37, false, masked, true},       // tiles, masks, every result
      {{24, 8, 0, 0, true, false, false}, 2, 100, 37, false, averaged, true},  // narrow, averaged weights
      {{32, 2, 12, 20, false, false, false}, 2, 9, 37, true, averaged, false}, // cross, other widths
  };
  for (int threads : {1, 2}) {
    mha::set_num_threads(threads);
    for (std::size_t i = 0; i < std::size(calls); ++i)
      EXPECT_EQ(allocations_in_steady_state(calls[i]), 0) << "call " << i << ", " << threads << " thread(s)";
  }
  mha::set_num_threads(1);
}

// Decoding: one token a step through a cache (a ring under a window, past
// its first wrap), for every weight format; steps after the first few
// allocate nothing.
TEST(Allocation, DecodeStepsThroughACacheAllocateNothingForEveryWeightFormat) {
  for (auto format : {mha::WeightFormat::f32, mha::WeightFormat::f16, mha::WeightFormat::bf16, mha::WeightFormat::int8})
    for (int threads : {1, 2}) {
      mha::set_num_threads(threads);
      mha::Config c;
      c.embed_dim = 64;
      c.num_heads = 8;
      c.num_kv_heads = 2;
      c.head_dim = 16;
      c.names = mha::WeightNames::hf;
      c.rope.dim = 16;
      c.sliding_window = 24;
      c.weights = format;
      mha::MultiheadAttention layer(c, 1);
      mha::KVCache cache(layer, 1, 24);
      std::vector<float> x(64, 0.25f), out(64), weights(8 * 256);  // [H, 1, positions since the reset]
      mha::ForwardOptions o;
      o.need_weights = mha::NeedWeights::per_head;
      auto step = [&] {
        mha::ForwardInput in{1, 1, 1, x.data()};
        in.cache = &cache;
        layer.forward(in, o, {out.data(), weights.data(), nullptr, nullptr});
      };
      for (int i = 0; i < 40; ++i) step();
      const long before = allocations.load();
      for (int i = 0; i < 200; ++i) step();
      EXPECT_EQ(allocations.load() - before, 0) << "format " << int(format) << ", " << threads << " thread(s)";
    }
  mha::set_num_threads(1);
}

}  // namespace
