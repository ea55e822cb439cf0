// A key/value cache: a sequence run in pieces (a prompt, then chunks or one
// token at a time) gives what one causal call over the whole sequence
// gives; under a sliding window a ring of capacity W - 1 + Lq does too;
// truncation rolls back; an encoder memory equals cross-attention.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "mha.hpp"
#include "random_vector.hpp"

namespace {

mha::Config decoder(std::int64_t d, std::int64_t window = 0) {
  mha::Config c;
  c.embed_dim = 16;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = d;
  c.names = mha::WeightNames::hf;
  c.rope.dim = d - d % 2;
  c.qk_norm_eps = 1e-6;
  c.sliding_window = window;
  return c;
}

struct Outputs {
  std::vector<float> output, weights;  // weights [B, H, Lq, columns]
};

Outputs call(mha::MultiheadAttention& layer, const float* x, std::int64_t B, std::int64_t L, std::int64_t columns,
         mha::KVCache* cache) {
  Outputs r;
  const auto& c = layer.config();
  r.output.assign(B * L * c.embed_dim, -7.0f);
  r.weights.assign(B * c.num_heads * L * columns, -7.0f);
  mha::ForwardInput in{B, L, L, x, nullptr, nullptr, cache, nullptr};
  mha::ForwardOptions o;
  o.is_causal = true;
  o.need_weights = mha::NeedWeights::per_head;
  layer.forward(in, o, {r.output.data(), r.weights.data(), nullptr, nullptr});
  return r;
}

// x [B, T, E] in pieces `chunks` through a cache of `capacity`, each piece's
// output and weights against rows of one whole causal call.
void expect_pieces_match_whole(const mha::Config& config, std::int64_t capacity, const std::vector<std::int64_t>& chunks) {
  const std::int64_t B = 2, E = config.embed_dim, H = config.num_heads;
  std::int64_t T = 0;
  for (auto n : chunks) T += n;
  mha::MultiheadAttention layer(config, 5);
  const auto x = random_vector(B * T * E, 6);
  const Outputs whole = call(layer, x.data(), B, T, T, nullptr);
  mha::KVCache cache(layer, B, capacity);
  std::int64_t start = 0;
  for (auto n : chunks) {
    std::vector<float> piece;
    for (std::int64_t b = 0; b < B; ++b)
      piece.insert(piece.end(), x.begin() + (b * T + start) * E, x.begin() + (b * T + start + n) * E);
    const std::int64_t columns = start + n;
    const Outputs part = call(layer, piece.data(), B, n, columns, &cache);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t e = 0; e < E; ++e)
          ASSERT_NEAR(part.output[(b * n + i) * E + e], whole.output[(b * T + start + i) * E + e], 2e-5f)
              << "step at " << start << " b=" << b << " i=" << i;
        for (std::int64_t h = 0; h < H; ++h)
          for (std::int64_t j = 0; j < columns; ++j)
            ASSERT_NEAR(part.weights[((b * H + h) * n + i) * columns + j], whole.weights[((b * H + h) * T + start + i) * T + j], 2e-6f)
                << "weight at " << start << " b=" << b << " h=" << h << " i=" << i << " j=" << j;
      }
    start += n;
    EXPECT_EQ(cache.length(), start);
  }
}

TEST(Cache, APromptThenChunksOrSingleTokensGiveTheWholeCausalCall) {
  for (std::int64_t d : {3, 16}) {
    SCOPED_TRACE("d=" + std::to_string(d));
    expect_pieces_match_whole(decoder(d), 16, {5, 1, 1, 1});
    expect_pieces_match_whole(decoder(d), 9, {3, 4, 2});
    expect_pieces_match_whole(decoder(d), 200, {97, 1, 90});  // across the tiles' key blocks
  }
}

TEST(Cache, ASlidingWindowRingOfWMinus1PlusLqHoldsEnough) {
  for (std::int64_t d : {3, 16}) {
    SCOPED_TRACE("d=" + std::to_string(d));
    expect_pieces_match_whole(decoder(d, 4), 4, std::vector<std::int64_t>(12, 1));
    expect_pieces_match_whole(decoder(d, 4), 6, {3, 1, 3, 1, 1, 3});
    // A ring stores 1/16 more rows than its capacity and moves them back
    // only when those are used up: steps and chunks past several of those.
    std::vector<std::int64_t> chunks = {20, 5};
    for (int i = 0; i < 30; ++i) chunks.push_back(1);
    for (std::int64_t n : {3, 5, 5, 2, 5}) chunks.push_back(n);
    for (int i = 0; i < 10; ++i) chunks.push_back(1);
    expect_pieces_match_whole(decoder(d, 36), 40, chunks);
  }
}

// Reduced weights project q, k and v separately (self-attention's fused
// projection is float32's): the call's own tokens, at their positions.
TEST(Cache, ReducedWeightsStepThroughTheCacheAsTheWholeCall) {
  for (auto f : {mha::WeightFormat::f16, mha::WeightFormat::bf16, mha::WeightFormat::int8})
    for (bool qk_norm : {true, false}) {
      SCOPED_TRACE("format " + std::to_string(int(f)) + (qk_norm ? " with" : " without") + " QK-norm");
      mha::Config c = decoder(16), ring = decoder(16, 4);
      c.weights = ring.weights = f;
      if (!qk_norm) c.qk_norm_eps = ring.qk_norm_eps = 0;
      expect_pieces_match_whole(c, 16, {5, 1, 1, 1});
      expect_pieces_match_whole(c, 200, {97, 1, 90});
      expect_pieces_match_whole(ring, 4, std::vector<std::int64_t>(9, 1));
    }
}

TEST(Cache, IsRefusedWhenFullAndTruncationRollsBack) {
  mha::MultiheadAttention layer(decoder(4), 7);
  mha::KVCache cache(layer, 1, 8);
  const auto x = random_vector(10 * 16, 8);
  call(layer, x.data(), 1, 7, 7, &cache);
  try {
    call(layer, x.data(), 1, 2, 9, &cache);
    ADD_FAILURE() << "a full cache took two more tokens";
  } catch (const mha::Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity 8"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.length(), 7);
  cache.truncate(4);  // then the same 3 tokens as the whole call's 5th to 7th
  const Outputs again = call(layer, x.data() + 4 * 16, 1, 3, 7, &cache);
  mha::KVCache fresh(layer, 1, 8);
  const Outputs first = call(layer, x.data(), 1, 7, 7, &fresh);
  for (std::int64_t i = 0; i < 3 * 16; ++i) EXPECT_NEAR(again.output[i], first.output[4 * 16 + i], 2e-5f);
  EXPECT_THROW(cache.truncate(8), mha::Error);
  mha::KVCache other(layer, 2, 8);
  EXPECT_THROW(call(layer, x.data(), 1, 1, 1, &other), mha::Error);  // batch 2 cache, batch 1 call
}

TEST(Cache, AnEnormousCapacityIsRefusedNotOverflowed) {
  for (std::int64_t window : {0, 4}) {  // a ring stores 1/16 more rows
    mha::MultiheadAttention layer(decoder(4, window), 7);
    for (std::int64_t capacity : {std::numeric_limits<std::int64_t>::max(), std::int64_t(1) << 53}) {
      try {
        mha::KVCache cache(layer, 1, capacity);
        ADD_FAILURE() << "a cache of " << capacity << " positions was made";
      } catch (const mha::Error& e) {
        EXPECT_NE(std::string(e.what()).find("cache"), std::string::npos) << e.what();
      }
    }
  }
}

// Heads of width 16 are stored head-major (whole panels of Wk), width 4 in
// the GEMM's rows; L = 3 attends in place, 9 in tiles.
TEST(Cache, AProjectedMemoryEqualsCrossAttentionOverTheEncoderOutput) {
  for (std::int64_t d : {4, 16})
  for (std::int64_t L : {3, 9}) {
  SCOPED_TRACE("d=" + std::to_string(d) + " L=" + std::to_string(L));
  mha::Config c = decoder(d);
  c.rope.dim = 0;
  c.kdim = c.vdim = 10;
  mha::MultiheadAttention layer(c, 9);
  const std::int64_t B = 2, M = 7;
  const auto x = random_vector(B * L * 16, 10), enc = random_vector(B * M * 10, 11);
  mha::KVCache memory(layer, B, M);
  layer.project_memory(enc.data(), B, M, memory);
  std::vector<float> a(B * L * 16), wa(B * 4 * L * M), b(a.size()), wb(wa.size());
  mha::ForwardOptions o;
  o.need_weights = mha::NeedWeights::per_head;
  mha::ForwardInput with_memory{B, L, M, x.data(), nullptr, nullptr, nullptr, &memory};
  layer.forward(with_memory, o, {a.data(), wa.data(), nullptr, nullptr});
  mha::ForwardInput cross{B, L, M, x.data(), enc.data(), enc.data()};
  layer.forward(cross, o, {b.data(), wb.data(), nullptr, nullptr});
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6f);
  for (std::size_t i = 0; i < wa.size(); ++i) EXPECT_NEAR(wa[i], wb[i], 1e-7f);
  }
}

}  // namespace
