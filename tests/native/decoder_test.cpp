// Today's decoder attention (grouped-query heads, head widths of their own,
// rotary embeddings, QK-norm, scale, softcap, ALiBi, windows, positions),
// the SIMD path against the double-precision reference, over both head
// kernels (narrow and tiled) and across the tiles' block edges.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compare.hpp"
#include "mha.hpp"

namespace {

// A Hugging Face-named layer: H query heads over Hkv key/value heads of width d.
mha::Config hf(std::int64_t e, std::int64_t h, std::int64_t hkv, std::int64_t d) {
  mha::Config c;
  c.embed_dim = e;
  c.num_heads = h;
  c.num_kv_heads = hkv;
  c.head_dim = d;
  c.names = mha::WeightNames::hf;
  c.hf_bias = {true, false, true, true};  // Whisper's
  return c;
}

mha::ForwardOptions causal_per_head() {
  mha::ForwardOptions o;
  o.is_causal = true;
  o.need_weights = mha::NeedWeights::per_head;
  return o;
}

constexpr std::int64_t kWidths[] = {3, 16};  // narrow and tiled heads

TEST(Decoder, GroupedAndMultiQueryHeadsMatchReference) {
  for (std::int64_t d : kWidths)
    for (auto [h, hkv] : {std::pair{8, 2}, {6, 1}, {4, 4}}) {
      SCOPED_TRACE("d=" + std::to_string(d) + " H=" + std::to_string(h) + " Hkv=" + std::to_string(hkv));
      compare_with_reference({hf(20, h, hkv, d), 2, 7, 7, false}, causal_per_head(), 300);
      mha::ForwardOptions avg;
      avg.need_weights = mha::NeedWeights::average;
      compare_with_reference({hf(20, h, hkv, d), 2, 5, 9, true}, avg, 301);
    }
}

// A few queries attend in place, a key/value head's group four (head, row)
// pairs at a time: groups of 4, 3 and 6 heads, 1-3 rows, each rule.
TEST(Decoder, FewQueriesOfAGroupAttendInPlaceAsReference) {
  unsigned seed = 360;
  for (auto [h, hkv] : {std::pair{8, 2}, {6, 2}, {6, 1}, {2, 2}})
    for (std::int64_t lq : {1, 2, 3})
      for (int rule = 0; rule < 4; ++rule) {
        SCOPED_TRACE("H=" + std::to_string(h) + " Hkv=" + std::to_string(hkv) + " Lq=" + std::to_string(lq) +
                     " rule " + std::to_string(rule));
        mha::Config c = hf(24, h, hkv, 16);
        mha::ForwardOptions o = causal_per_head();
        o.bottom_right = true;
        if (rule == 1) c.softcap = 2.0;
        if (rule == 2) c.sliding_window = 5;
        if (rule == 3) o.need_weights = mha::NeedWeights::average;
        compare_with_reference({c, 2, lq, 70, true}, o, seed++);
        c.alibi = true;  // positions: self-attention
        compare_with_reference({c, 2, lq, lq, false}, o, seed++);
      }
}

TEST(Decoder, RotaryEmbeddingsOfEveryLayoutAndScalingMatchReference) {
  std::vector<std::int32_t> positions{0, 1, 2, 3, 900, 4001, 4002, /**/ 7, 7, 7, 8, 9, 10, 11};
  unsigned seed = 310;
  for (std::int64_t d : {6, 16})
    for (auto layout : {mha::Rope::Layout::half, mha::Rope::Layout::interleaved})
      for (auto scaling : {mha::Rope::Scaling::none, mha::Rope::Scaling::linear, mha::Rope::Scaling::llama3,
                           mha::Rope::Scaling::yarn, mha::Rope::Scaling::longrope})
        for (bool partial : {false, true}) {
          mha::Config c = hf(16, 4, 2, d);
          c.rope.dim = partial ? d - 2 : d;
          c.rope.base = scaling == mha::Rope::Scaling::llama3 ? 500000.0 : 10000.0;
          c.rope.layout = layout;
          c.rope.scaling = scaling;
          c.rope.factor = 8;
          // longrope: the positions below reach past 64 (long factors) but not 5000 (short ones)
          c.rope.original_max_positions = scaling == mha::Rope::Scaling::longrope && partial ? 5000 : 64;
          for (std::int64_t t = 0; t < c.rope.dim / 2; ++t) {
            c.rope.short_factor.push_back(1.0 + 0.25 * double(t));
            c.rope.long_factor.push_back(2.0 + 3.0 * double(t));
          }
          if (scaling == mha::Rope::Scaling::yarn || scaling == mha::Rope::Scaling::longrope)
            c.rope.attention_factor = 1.2;
          mha::ForwardOptions o = causal_per_head();
          o.positions = positions.data();
          SCOPED_TRACE("d=" + std::to_string(d) + " seed " + std::to_string(seed));
          compare_with_reference({c, 2, 7, 7, false}, o, seed++);
        }
}

TEST(Decoder, QkNormScaleSoftcapAndAlibiMatchReference) {
  for (std::int64_t d : kWidths) {
    mha::Config c = hf(24, 6, 3, d);
    c.qk_norm_eps = 1e-6;
    c.rope.dim = d - d % 2;
    compare_with_reference({c, 2, 6, 6, false}, causal_per_head(), 320);  // Qwen3
    c = hf(24, 6, 3, d);
    c.scale = 0.3;
    c.softcap = 1.5;
    compare_with_reference({c, 2, 6, 6, false}, causal_per_head(), 321);  // Gemma 2
    c = hf(24, 6, 6, d);
    c.alibi = true;  // 6 heads: 4 of the power-of-two series, 2 of the other
    compare_with_reference({c, 2, 6, 6, false}, causal_per_head(), 322);
  }
}

// A sink logit per head joins each softmax (GPT-OSS): over the tiled, the
// narrow and the in-place heads, with weights, and in rows whose every key
// is blocked (valid length 0), which then give 0 whatever the policy.
TEST(Decoder, SinksJoinEverySoftmaxAsReference) {
  const std::int32_t lens[] = {0, 4};
  for (std::int64_t d : kWidths)
    for (bool nan_policy : {false, true}) {
      SCOPED_TRACE("d=" + std::to_string(d) + (nan_policy ? " nan" : " zero"));
      mha::Config c = hf(24, 6, 2, d);
      c.sinks = true;
      c.sliding_window = 4;
      mha::ForwardOptions o = causal_per_head();
      if (nan_policy) o.fully_masked_rows = mha::FullyMaskedRows::nan;
      compare_with_reference({c, 2, 9, 9, false}, o, 370);
      o.valid_lens = lens;
      compare_with_reference({c, 2, 7, 7, false}, o, 371);
      o.need_weights = mha::NeedWeights::average;
      compare_with_reference({c, 2, 2, 40, true}, o, 372);  // few queries: in place when d > kNarrowWidth
      o.valid_lens = nullptr;
      o.bottom_right = true;
      compare_with_reference({c, 2, 1, 40, true}, o, 373);
    }
}

// Windows of W keys counting the query, alone and with causal masking, over
// sequences long enough that whole key blocks fall before every window.
TEST(Decoder, SlidingWindowsSkipOnlyKeysNoQuerySeesAndMatchReference) {
  for (std::int64_t d : kWidths)
    for (std::int64_t w : {1, 3, 90}) {
      mha::Config c = hf(16, 2, 1, d);
      c.sliding_window = w;
      SCOPED_TRACE("d=" + std::to_string(d) + " W=" + std::to_string(w));
      compare_with_reference({c, 1, 200, 200, false}, causal_per_head(), 330);
      mha::ForwardOptions not_causal;
      not_causal.need_weights = mha::NeedWeights::average;
      compare_with_reference({c, 2, 9, 9, false}, not_causal, 331);
    }
}

TEST(Decoder, BottomRightCausalCrossAttentionMatchesReference) {
  for (std::int64_t d : kWidths) {
    mha::ForwardOptions o = causal_per_head();
    o.bottom_right = true;
    compare_with_reference({hf(16, 4, 2, d), 2, 3, 7, true}, o, 340);
    compare_with_reference({hf(16, 4, 2, d), 2, 7, 3, true}, o, 341);  // the first rows see nothing
  }
}

TEST(Decoder, PerBatchAttentionMasksMatchReference) {
  const std::int64_t B = 2, L = 5;
  auto additive = random_vector(B * L * L, 350, -2.0f, 1.0f);
  for (std::size_t i = 0; i < additive.size(); i += 7) additive[i] = -3.4028234663852886e38f;
  for (std::int64_t d : kWidths) {
    mha::ForwardOptions o;
    o.attn.additive = additive.data();
    o.attn_per_batch = true;
    o.need_weights = mha::NeedWeights::per_head;
    compare_with_reference({hf(16, 4, 2, d), B, L, L, false}, o, 351);
  }
}

TEST(DecoderChecks, ImpossibleDecoderConfigurationsAreNamed) {
  auto refuses = [](mha::Config c, const std::string& fragment) {
    try {
      mha::MultiheadAttention layer(c);
      ADD_FAILURE() << "accepted; expected an error naming " << fragment;
    } catch (const mha::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  refuses(hf(16, 6, 4, 4), "multiple of num_kv_heads");
  mha::Config c = hf(16, 4, 2, 4);
  c.rope.dim = 3;
  refuses(c, "rope.dim must be even");
  c.rope.dim = 6;
  refuses(c, "rope.dim must be even and <= head_dim");
  c = hf(16, 4, 2, 4);
  c.softcap = -1;
  refuses(c, "softcap");
  c = mha::Config{};
  c.embed_dim = 8, c.num_heads = 2, c.sinks = true;  // nn.MultiheadAttention's names
  refuses(c, "sinks");
  c = hf(16, 4, 2, 4);
  c.sliding_window = -2;
  refuses(c, "sliding_window");
  mha::Config torch;
  torch.embed_dim = 16;
  torch.num_heads = 4;
  torch.num_kv_heads = 2;
  refuses(torch, "Hugging Face's names");
  c = hf(16, 4, 2, 4);
  c.add_bias_kv = true;
  refuses(c, "add_bias_kv");
}

}  // namespace
