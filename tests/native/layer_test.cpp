// The SIMD forward pass against the double-precision reference
// (src/reference.cpp) over configurations and options, plus the C++ entry's
// own boundary checks. PyTorch's numbers are checked by the JS suite against
// the committed fixtures; here the question is "does the fast path compute
// what the obvious path computes".
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "mha.hpp"
#include "reference.hpp"

#include "compare.hpp"
#include "random_vector.hpp"

namespace {

mha::Config config(std::int64_t e, std::int64_t h, std::int64_t kdim = 0, std::int64_t vdim = 0,
                   bool bias = true, bool bias_kv = false, bool zero_attn = false) {
  return mha::Config{e, h, kdim, vdim, bias, bias_kv, zero_attn};
}

// Heads up to kNarrowWidth (6) wide are attended four queries at a time,
// wider ones in tiles: the tests below run both, each case at a narrow and
// a wide head width.
constexpr std::int64_t kWidths[] = {4, 12};

TEST(Layer, SelfAttentionMatchesReferenceForHeadWidths1To64) {
  unsigned seed = 1;
  for (auto [e, h] : {std::pair{8, 8}, {16, 8}, {12, 4}, {21, 3}, {14, 2}, {16, 2}, {27, 3}, {128, 2}})
    for (std::int64_t l : {1, 3, 4, 5, 9, 17}) {
      mha::ForwardOptions o;
      o.need_weights = mha::NeedWeights::per_head;
      SCOPED_TRACE("E=" + std::to_string(e) + " H=" + std::to_string(h) + " L=" + std::to_string(l));
      compare_with_reference({config(e, h), 2, l, l, false}, o, seed++);
    }
}

TEST(Layer, CrossAttentionWithOtherKeyAndValueWidthsMatchesReference) {
  mha::ForwardOptions o;
  o.need_weights = mha::NeedWeights::average;
  for (std::int64_t d : kWidths) {
    compare_with_reference({config(3 * d, 3, 5, 7), 2, 4, 6, true}, o, 7);
    compare_with_reference({config(3 * d, 3), 3, 1, 9, true}, o, 8);
  }
}

TEST(Layer, BiasFreeBiasKVAndZeroAttentionMatchReference) {
  mha::ForwardOptions o;
  o.need_weights = mha::NeedWeights::per_head;
  for (std::int64_t d : kWidths) {
    SCOPED_TRACE("d=" + std::to_string(d));
    compare_with_reference({config(2 * d, 2, 0, 0, false), 2, 5, 5, false}, o, 9);
    compare_with_reference({config(3 * d, 3, 0, 0, true, true, false), 2, 5, 5, false}, o, 10);
    compare_with_reference({config(3 * d, 3, 0, 0, true, false, true), 2, 5, 5, false}, o, 11);
    compare_with_reference({config(3 * d, 3, 0, 0, true, true, true), 2, 3, 6, true}, o, 12);
  }
}

// Lq 4 attends keys in place (attends_in_place), 7 in tiles.
TEST(Layer, EveryMaskKindMatchesReference) {
  for (const std::int64_t Lq : {4, 7}) {
  SCOPED_TRACE("Lq=" + std::to_string(Lq));
  const std::int64_t B = 2, H = 3, Lk = 6;
  auto blocked_kp = std::vector<std::uint8_t>{0, 0, 1, 0, 1, 0, /**/ 1, 0, 0, 0, 0, 1};
  auto additive_kp = random_vector(B * Lk, 31, -2.0f, 2.0f);
  std::vector<std::uint8_t> blocked_attn(B * H * Lq * Lk);
  for (std::size_t i = 0; i < blocked_attn.size(); ++i) blocked_attn[i] = (i * 7 % 5) == 0;
  auto additive_attn = random_vector(B * H * Lq * Lk, 32, -2.0f, 2.0f);
  std::vector<std::int32_t> lens_b{3, 5}, lens_bq;
  for (std::int64_t i = 0; i < B * Lq; ++i) lens_bq.push_back(std::int32_t(1 + (i * 5) % Lk));

  for (std::int64_t d : kWidths)
    for (int variant = 0; variant < 8; ++variant) {
      mha::ForwardOptions o;
      o.need_weights = mha::NeedWeights::per_head;
      switch (variant) {
        case 0: o.key_padding.blocked = blocked_kp.data(); break;
        case 1: o.key_padding.additive = additive_kp.data(); break;
        case 2: o.attn.blocked = blocked_attn.data(); break;
        case 3: o.attn.additive = additive_attn.data(); o.attn_per_head = true; break;
        case 4: o.is_causal = true; o.key_padding.blocked = blocked_kp.data(); break;
        case 5: o.valid_lens = lens_b.data(); break;
        case 6: o.valid_lens = lens_bq.data(); o.valid_lens_per_query = true; break;
        case 7:
          o.attn.blocked = blocked_attn.data(); o.attn_per_head = true;
          o.key_padding.additive = additive_kp.data(); o.is_causal = true;
          break;
      }
      SCOPED_TRACE("d=" + std::to_string(d) + " variant " + std::to_string(variant));
      compare_with_reference({config(H * d, H, 0, 0, true, true, true), B, Lq, Lk, true}, o, 40 + variant);
    }
  }
}

TEST(Layer, FullyMaskedRowsFollowThePolicy) {
  std::vector<std::uint8_t> all_blocked(2 * 5, 0);
  for (int j = 0; j < 5; ++j) all_blocked[5 + j] = 1;  // batch 1: every key padded
  for (std::int64_t d : kWidths)
    for (auto policy : {mha::FullyMaskedRows::zero, mha::FullyMaskedRows::nan}) {
      mha::ForwardOptions o;
      o.key_padding.blocked = all_blocked.data();
      o.need_weights = mha::NeedWeights::average;
      o.fully_masked_rows = policy;
      compare_with_reference({config(2 * d, 2), 2, 5, 5, false}, o, 50);
      compare_with_reference({config(2 * d, 2), 2, 2, 5, true}, o, 51);  // in place
    }
}

TEST(Layer, ZeroPolicyGivesZeroHeadsAndBiasOnlyOutputForFullyMaskedRows) {
  for (std::int64_t d : kWidths) {
    const std::int64_t E = 2 * d;
    mha::MultiheadAttention layer(config(E, 2), 3);
    randomise_biases(layer, 4);
    auto x = random_vector(3 * E, 5);
    std::vector<std::int32_t> lens{0};
    mha::ForwardOptions o;
    o.valid_lens = lens.data();
    const Results r = run(false, layer, {1, 3, 3, x.data(), nullptr, nullptr}, o);
    const auto& bo = layer.parameter("out_proj.bias");
    for (std::size_t i = 0; i < r.heads.size(); ++i) EXPECT_EQ(r.heads[i], 0.0f);
    for (std::size_t i = 0; i < r.output.size(); ++i) EXPECT_FLOAT_EQ(r.output[i], bo[i % E]);
  }
}

TEST(Layer, EmptyKeySequenceGivesZeroHeadsUnderBothPolicies) {
  for (std::int64_t d : kWidths)
    for (auto policy : {mha::FullyMaskedRows::zero, mha::FullyMaskedRows::nan}) {
      mha::MultiheadAttention layer(config(2 * d, 2), 3);
      auto q = random_vector(2 * 2 * d, 5);
      mha::ForwardOptions o;
      o.fully_masked_rows = policy;
      float key_dummy = 0.0f;
      const Results r = run(false, layer, {1, 2, 0, q.data(), &key_dummy, &key_dummy}, o);
      for (float v : r.heads) EXPECT_EQ(v, 0.0f);
    }
}

TEST(Layer, EmptyQueryOrBatchWritesNothingAndDoesNotFail) {
  mha::MultiheadAttention layer(config(8, 2), 3);
  mha::ForwardOptions o;
  EXPECT_NO_THROW(run(false, layer, {0, 4, 4, nullptr, nullptr, nullptr}, o));
  auto k = random_vector(3 * 8, 1);
  EXPECT_NO_THROW(run(false, layer, {1, 0, 3, nullptr, k.data(), k.data()}, o));
}

// Query and key counts crossing attention's 80-query and 80-key blocks (and
// not multiples of them), with every mask kind and weights asked for, so
// blocks skipped, partly masked and straddling Lk all run.
TEST(Layer, LongSequencesCrossingTheBlocksMatchReference) {
  const std::int64_t B = 2, H = 4, Lq = 97, Lk = 203;
  std::vector<std::uint8_t> blocked_kp(B * Lk), blocked_attn(Lq * Lk);
  for (std::size_t i = 0; i < blocked_kp.size(); ++i) blocked_kp[i] = i % 11 == 3 || (i >= 203 + 150);
  for (std::size_t i = 0; i < blocked_attn.size(); ++i) blocked_attn[i] = i * 13 % 7 == 0;
  auto additive_attn = random_vector(B * H * Lq * Lk, 33, -3.0f, 1.0f);
  std::vector<std::int32_t> lens_b{170, 81}, lens_bq(B * Lq);
  for (std::size_t i = 0; i < lens_bq.size(); ++i) lens_bq[i] = std::int32_t(i * 37 % 210);
  for (std::int64_t d : kWidths)
    for (int variant = 0; variant < 6; ++variant) {
      mha::ForwardOptions o;
      o.need_weights = variant % 2 ? mha::NeedWeights::average : mha::NeedWeights::per_head;
      switch (variant) {
        case 0: o.is_causal = true; break;
        case 1: o.key_padding.blocked = blocked_kp.data(); break;
        case 2: o.attn.blocked = blocked_attn.data(); break;
        case 3: o.attn.additive = additive_attn.data(); o.attn_per_head = true; break;
        case 4: o.valid_lens = lens_b.data(); o.is_causal = true; break;
        case 5: o.valid_lens = lens_bq.data(); o.valid_lens_per_query = true; break;
      }
      SCOPED_TRACE("d=" + std::to_string(d) + " variant " + std::to_string(variant));
      compare_with_reference({config(H * d, H, 0, 0, true, variant == 4, variant == 5), B, Lq, Lk, true}, o,
                             60 + variant);
    }
  mha::ForwardOptions causal;
  causal.is_causal = true;
  for (std::int64_t d : kWidths)  // self-attention, O(L) memory path
    compare_with_reference({config(4 * d, 4), 1, 171, 171, false}, causal, 70);
}

// So many keys that packing every head at once would pass the 32 MiB the
// layer allows itself (8 heads of width 9 x 45k keys, packed 25 floats a
// key): heads are then packed one at a time, each by several tasks of 1280
// keys, bias_kv and zero keys included. Keys and values of width 1 keep
// the projections cheap.
TEST(Layer, KeysTooManyToPackForEveryHeadAtOnceMatchReference) {
  mha::ForwardOptions o;
  o.need_weights = mha::NeedWeights::per_head;
  compare_with_reference({config(72, 8, 1, 1, true, true, true), 1, 3, 45000, true}, o, 80);
}

// A NaN in one query row makes just that row NaN; a NaN in one key makes
// every row NaN, as in PyTorch, whichever query and key blocks they fall in.
TEST(Layer, NaNInAQueryOrAKeyPropagatesAsInPyTorch) {
  for (std::int64_t d : kWidths) {
    const std::int64_t E = 2 * d, Lq = 170, Lk = 90;
    mha::MultiheadAttention layer(config(E, 2), 3);
    auto q = random_vector(Lq * E, 9), kv = random_vector(Lk * E, 10);
    q[100 * E + 5] = std::nanf("");
    std::vector<float> out(Lq * E);
    layer.forward({1, Lq, Lk, q.data(), kv.data(), kv.data()}, {}, {out.data(), nullptr, nullptr, nullptr});
    for (std::int64_t i = 0; i < Lq; ++i)
      for (std::int64_t e = 0; e < E; ++e) ASSERT_EQ(std::isnan(out[i * E + e]), i == 100) << "d=" << d << " row " << i;
    q[100 * E + 5] = 0.5f;
    kv[85 * E + 2] = std::nanf("");
    layer.forward({1, Lq, Lk, q.data(), kv.data(), kv.data()}, {}, {out.data(), nullptr, nullptr, nullptr});
    for (std::size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(std::isnan(out[i])) << "d=" << d << " at " << i;
  }
}

TEST(Layer, InitialisationIsDeterministicAndPyTorchScaled) {
  mha::MultiheadAttention a(config(64, 4), 123), b(config(64, 4), 123), c(config(64, 4), 124);
  EXPECT_EQ(a.parameter("in_proj_weight"), b.parameter("in_proj_weight"));
  EXPECT_NE(a.parameter("in_proj_weight"), c.parameter("in_proj_weight"));
  const double bound = std::sqrt(6.0 / (4 * 64));  // xavier_uniform_ on [3E, E]
  double max_abs = 0;
  for (float w : a.parameter("in_proj_weight")) max_abs = std::max(max_abs, double(std::abs(w)));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.9 * bound);
  for (float v : a.parameter("in_proj_bias")) EXPECT_EQ(v, 0.0f);
  for (float v : a.parameter("out_proj.bias")) EXPECT_EQ(v, 0.0f);
}

TEST(Layer, ParameterNamesFollowPyTorchStateDict) {
  using names = std::vector<std::string>;
  EXPECT_EQ(mha::MultiheadAttention(config(8, 2)).parameter_names(),
            (names{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}));
  EXPECT_EQ(mha::MultiheadAttention(config(8, 2, 3, 5, false, true)).parameter_names(),
            (names{"q_proj_weight", "k_proj_weight", "v_proj_weight", "bias_k", "bias_v", "out_proj.weight"}));
  EXPECT_EQ(mha::MultiheadAttention(config(8, 2, 3, 5)).parameter_shape("k_proj_weight"),
            (std::vector<std::int64_t>{8, 3}));
}

// The entry's checks: each throws mha::Error whose message names the culprit.
template <typename F>
void expect_error(F&& f, mha::Error::Kind kind, const std::string& fragment) {
  try {
    f();
    FAIL() << "expected mha::Error mentioning '" << fragment << "'";
  } catch (const mha::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(LayerChecks, ImpossibleConfigurationsAreNamed) {
  expect_error([] { mha::MultiheadAttention(config(10, 3)); }, mha::Error::Kind::range,
               "embed_dim=10 and num_heads=3");
  expect_error([] { mha::MultiheadAttention(config(0, 1)); }, mha::Error::Kind::range, "embed_dim");
  expect_error([] { mha::MultiheadAttention(config(8, -2)); }, mha::Error::Kind::range, "num_heads");
  expect_error([] { mha::MultiheadAttention(config(8, 2, -1)); }, mha::Error::Kind::range, "kdim");
}

TEST(LayerChecks, BadParametersAreNamedAndLeaveTheLayerUsable) {
  mha::MultiheadAttention layer(config(8, 2));
  std::vector<float> v(5);
  expect_error([&] { layer.set_parameter("in_proj_weight", v.data(), v.size()); },
               mha::Error::Kind::range, "must have 192 values (shape [24, 8]), got 5");
  expect_error([&] { layer.set_parameter("q_proj_weight", v.data(), v.size()); },
               mha::Error::Kind::range, "'q_proj_weight' does not exist");
  auto x = random_vector(8, 1);
  EXPECT_NO_THROW(run(false, layer, {1, 1, 1, x.data(), nullptr, nullptr}, {}));
}

TEST(LayerChecks, InconsistentForwardArgumentsAreNamed) {
  mha::MultiheadAttention layer(config(8, 2, 4, 4));
  auto x = random_vector(8 * 8, 1);
  std::vector<float> out(64);
  mha::ForwardOutputs outs{out.data(), nullptr, nullptr, nullptr};
  expect_error([&] { layer.forward({1, 2, 2, x.data(), nullptr, nullptr}, {}, outs); },
               mha::Error::Kind::range, "kdim (4) differs from embed_dim (8)");
  expect_error([&] { layer.forward({-1, 2, 2, x.data(), x.data(), x.data()}, {}, outs); },
               mha::Error::Kind::range, "input.batch must be >= 0, got -1");
  expect_error([&] { layer.forward({1, 2, 2, nullptr, x.data(), x.data()}, {}, outs); },
               mha::Error::Kind::type, "input.query is null");
  std::vector<std::int32_t> lens{-3};
  mha::ForwardOptions o;
  o.valid_lens = lens.data();
  expect_error([&] { layer.forward({1, 2, 2, x.data(), x.data(), x.data()}, o, outs); },
               mha::Error::Kind::range, "options.valid_lens[0] must be >= 0, got -3");
  mha::ForwardOptions w;
  w.need_weights = mha::NeedWeights::average;
  expect_error([&] { layer.forward({1, 2, 2, x.data(), x.data(), x.data()}, w, outs); },
               mha::Error::Kind::type, "outputs.weights is null");
  expect_error([&] { layer.forward({1 << 30, 1 << 30, 2, x.data(), x.data(), x.data()}, {}, outs); },
               mha::Error::Kind::range, "too large");
}

}  // namespace
