// Reduced-precision weights: the scalar conversions against IEEE and the
// documented int8 scheme, the GEMM that dequantizes in its registers against
// the scalar GEMM over the dequantized weights, and layers stored so against
// the double-precision reference over those same weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "compare.hpp"
#include "kernels.hpp"
#include "mha.hpp"
#include "weight_formats.hpp"

namespace {

using mha::WeightFormat;

constexpr WeightFormat kReduced[] = {WeightFormat::f16, WeightFormat::bf16, WeightFormat::int8};

std::string name_of(WeightFormat f) {
  return f == WeightFormat::f16 ? "f16" : f == WeightFormat::bf16 ? "bf16" : f == WeightFormat::int8 ? "int8" : "f32";
}

TEST(WeightFormats, EveryFloat16RoundTripsThroughFloat32) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float x = mha::f16_value(std::uint16_t(h));
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(mha::f16_value(mha::f16_bits(x))));
      continue;
    }
    ASSERT_EQ(mha::f16_bits(x), h) << "half bits " << h << " value " << x;
  }
}

TEST(WeightFormats, Float16RoundsToNearestEvenAndOverflowsToInfinity) {
  EXPECT_EQ(mha::f16_bits(1.0f), 0x3C00);
  EXPECT_EQ(mha::f16_bits(65504.0f), 0x7BFF);
  EXPECT_EQ(mha::f16_bits(65519.99f), 0x7BFF);                 // under half an ulp above the max
  EXPECT_EQ(mha::f16_bits(65520.0f), 0x7C00);                  // the tie goes to the even: infinity
  EXPECT_EQ(mha::f16_bits(-1e9f), 0xFC00);
  EXPECT_EQ(mha::f16_bits(1.0f + 0x1p-11f), 0x3C00);           // tie between 1 and 1 + 2^-10: even
  EXPECT_EQ(mha::f16_bits(1.0f + 3 * 0x1p-11f), 0x3C02);       // tie between odd and even: even
  EXPECT_EQ(mha::f16_bits(0x1p-24f), 0x0001);                  // the smallest subnormal
  EXPECT_EQ(mha::f16_bits(0x1p-25f), 0x0000);                  // half of it: ties to even (0)
  EXPECT_EQ(mha::f16_bits(3 * 0x1p-25f), 0x0002);              // 1.5 units: even (2)
  EXPECT_EQ(mha::f16_bits(-0.0f), 0x8000);
  EXPECT_EQ(mha::f16_value(0x0001), 0x1p-24f);
  EXPECT_EQ(mha::f16_value(0x83FF), -1023 * 0x1p-24f);
}

TEST(WeightFormats, EveryBfloat16RoundTripsAndFloatsRoundToNearestEven) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float x = mha::bf16_value(std::uint16_t(b));
    if (std::isnan(x)) continue;
    ASSERT_EQ(mha::bf16_bits(x), b);
  }
  EXPECT_EQ(mha::bf16_bits(1.0f + 0x1p-8f), 0x3F80);           // tie: even
  EXPECT_EQ(mha::bf16_bits(1.0f + 3 * 0x1p-8f), 0x3F82);
  EXPECT_TRUE(std::isnan(mha::bf16_value(mha::bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
}

// The fixture generator's engineered block (tests/fixtures/decoder_dtypes.py).
TEST(WeightFormats, Int8RoundsHalfAwayFromZeroAndAZeroBlockHasScaleZero) {
  std::vector<float> block(32, 0.0f);
  block[0] = 127.0f / 128;
  block[1] = 2.5f / 128, block[2] = -2.5f / 128, block[3] = -0.5f / 128, block[4] = 1.5f / 128;
  const float scale = mha::int8_scale(block.data(), block.size());
  EXPECT_EQ(scale, 1.0f / 128);
  const int want[] = {127, 3, -3, -1, 2};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(mha::int8_code(block[i], scale), want[i]) << i;
  const std::vector<float> zeros(12, 0.0f);
  EXPECT_EQ(mha::int8_scale(zeros.data(), zeros.size()), 0.0f);
  EXPECT_EQ(mha::int8_code(0.0f, 0.0f), 0);
}

TEST(WeightFormats, UnstorableValuesAreFoundWhereTheFormatCannotHoldThem) {
  const std::vector<float> w{1.0f, 65504.0f, 70000.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(mha::first_unstorable(w.data(), w.size(), WeightFormat::f16), 2u);
  EXPECT_EQ(mha::first_unstorable(w.data(), w.size(), WeightFormat::int8), 3u);
  EXPECT_EQ(mha::first_unstorable(w.data(), w.size(), WeightFormat::bf16), w.size());
  EXPECT_EQ(mha::first_unstorable(w.data(), w.size(), WeightFormat::f32), w.size());
}

// Weights whose f16 values include subnormals and large values, so the
// kernel's bit conversion meets every kind of finite half.
std::vector<float> weights(std::size_t n, unsigned seed) {
  auto w = random_vector(n, seed);
  for (std::size_t i = 0; i < n; i += 7) w[i] *= 1e-6f;   // f16 subnormals
  for (std::size_t i = 3; i < n; i += 11) w[i] *= 3e4f;   // large, still finite
  return w;
}

// Every format, float32 too; m = 1 with n of 32 or more takes the single-row
// kernel (four panels at a time).
TEST(WeightFormats, LinearOverReducedPanelsMatchesScalarOverTheDequantizedWeights) {
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::f16, WeightFormat::bf16, WeightFormat::int8})
    for (std::size_t m : {1, 2, 5, 7, 13})
      for (std::size_t k : {1, 5, 32, 45, 300})
        for (std::size_t n : {1, 8, 9, 20, 32, 75}) {
          SCOPED_TRACE(name_of(f) + " m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n));
          auto x = random_vector(m * k, 61), w = weights(n * k, 62), bias = random_vector(n, 63);
          const mha::PackedWeight packed = mha::pack_reduced(w.data(), n, k, f);
          std::vector<float> deq(n * k);
          mha::unpack_weight(packed, deq.data());
          double largest = 0;
          for (float v : deq) largest = std::max(largest, double(std::fabs(v)));
          std::vector<float> y1(m * n), y2(m * n);
          mha::simd::linear(x.data(), m, k, packed, bias.data(), y1.data(), n);
          mha::scalar::linear(x.data(), m, k, deq.data(), n, k, bias.data(), y2.data(), n);
          const double tolerance = 1e-6 * double(k) * (largest + 1);
          for (std::size_t i = 0; i < y1.size(); ++i) ASSERT_NEAR(y1[i], y2[i], tolerance) << "at " << i;
        }
}

// A depth too deep for one cache block of A (about 80000 floats in a row
// group) is packed and multiplied in parts, each adding onto what the last
// left in C: the same sums as one pass. Every format; two and seven rows
// (one row group, and one and a part).
TEST(WeightFormats, LinearSplitsADepthTooDeepForOneBlock) {
  const std::size_t k = 80000 + 45, n = 9;
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::f16, WeightFormat::bf16, WeightFormat::int8})
    for (std::size_t m : {2, 7}) {
      SCOPED_TRACE(name_of(f) + " m=" + std::to_string(m));
      auto x = random_vector(m * k, 71), w = weights(n * k, 72), bias = random_vector(n, 73);
      const mha::PackedWeight packed = mha::pack_reduced(w.data(), n, k, f);
      std::vector<float> deq(n * k);
      mha::unpack_weight(packed, deq.data());
      std::vector<float> y1(m * n), y2(m * n);
      mha::simd::linear(x.data(), m, k, packed, bias.data(), y1.data(), n);
      mha::scalar::linear(x.data(), m, k, deq.data(), n, k, bias.data(), y2.data(), n);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          double magnitude = std::fabs(double(bias[j]));  // what the rounding of a sum of k terms scales with
          for (std::size_t t = 0; t < k; ++t) magnitude += std::fabs(double(x[i * k + t]) * deq[j * k + t]);
          ASSERT_NEAR(y1[i * n + j], y2[i * n + j], 1e-5 * magnitude) << "at " << i << "," << j;
        }
    }
}

// The single-row kernel takes f16 activations times 2^112 instead of
// multiplying every weight by it, when every |x| < 2^16: the products are the
// same real numbers, so a row's result is bit for bit what the multi-row
// kernel gives it, with activations either side of that bound, subnormal
// halves, zeros and a NaN among them.
// f16 projections take A times 2^112 (and skip the weights' multiply by it)
// when every |x| of the row or the packed block is < 2^16: the same products,
// so the same bits. One and two rows, against the first rows of a three-row
// call whose third row's 70000 keeps its block on the plain path.
TEST(WeightFormats, Float16ScaledUpRowsEqualThePlainPathBitForBit) {
  const std::size_t k = 300, n = 64;
  auto w = weights(n * k, 64);
  w[3] = 3e-6f, w[k + 7] = -5e-8f, w[2 * k + 17] = 0.0f;  // subnormal halves, and a zero under x[17]
  const mha::PackedWeight packed = mha::pack_reduced(w.data(), n, k, WeightFormat::f16);
  auto bias = random_vector(n, 65);
  for (float big : {1.0f, 65504.0f, 65536.0f, 3e9f, std::numeric_limits<float>::quiet_NaN()}) {
    auto x = random_vector(3 * k, 66, -100.0f, 100.0f);
    x[17] = big, x[k + 17] = big;
    x[18] = 1e-40f, x[k + 18] = 1e-40f;  // a subnormal activation
    x[2 * k + 5] = 70000.0f;
    std::vector<float> three(3 * n);
    mha::simd::linear(x.data(), 3, k, packed, bias.data(), three.data(), n);
    for (std::size_t rows : {1, 2}) {
      std::vector<float> some(rows * n);
      mha::simd::linear(x.data(), rows, k, packed, bias.data(), some.data(), n);
      for (std::size_t j = 0; j < rows * n; ++j)
        ASSERT_EQ(std::memcmp(&some[j], &three[j], sizeof(float)), 0)
            << rows << " row(s), x[17] = " << big << ", value " << j << ": " << some[j] << " against " << three[j];
    }
  }
}

TEST(WeightFormats, LinearOverSomePanelsWritesThoseColumnsOnly) {
  for (WeightFormat f : {WeightFormat::f32, WeightFormat::f16, WeightFormat::bf16, WeightFormat::int8}) {
    const std::size_t m = 3, k = 70, n = 29;  // panels 0-3, the last partial
    auto x = random_vector(m * k, 71), w = random_vector(n * k, 72), bias = random_vector(n, 73);
    const mha::PackedWeight packed = mha::pack_reduced(w.data(), n, k, f);
    std::vector<float> whole(m * n), part(m * n, 9.0f);
    mha::simd::linear(x.data(), m, k, packed, bias.data(), whole.data(), n);
    mha::simd::linear_panels(x.data(), m, k, packed, 1, 4, bias.data() + 8, part.data() + 8, n);
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t j = 0; j < n; ++j)
        EXPECT_EQ(part[r * n + j], j < 8 ? 9.0f : whole[r * n + j]) << name_of(f) << " row " << r << " column " << j;
  }
}

mha::Config decoder(WeightFormat f) {
  mha::Config c;
  c.embed_dim = 44;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 12;
  c.names = mha::WeightNames::hf;
  c.rope.dim = 12;
  c.weights = f;
  return c;
}

TEST(WeightFormats, LayersWithReducedWeightsMatchTheReferenceOverTheirDequantizedWeights) {
  mha::ForwardOptions o;
  o.is_causal = true;
  o.need_weights = mha::NeedWeights::per_head;
  unsigned seed = 700;
  for (WeightFormat f : kReduced) {
    SCOPED_TRACE(name_of(f));
    compare_with_reference({decoder(f), 2, 6, 6, false}, o, seed++);
    mha::Config qk = decoder(f);
    qk.qk_norm_eps = 1e-6;
    compare_with_reference({qk, 1, 5, 5, false}, o, seed++);
    mha::Config torch;  // nn.MultiheadAttention's names: in_proj_weight holds q, k and v
    torch.embed_dim = 16;
    torch.num_heads = 2;
    torch.weights = f;
    compare_with_reference({torch, 2, 4, 4, false}, o, seed++);
    compare_with_reference({torch, 2, 3, 5, true}, o, seed++);
  }
}

TEST(WeightFormats, AReducedWeightReadsBackDequantizedAndTakesItsBytes) {
  const auto w = random_vector(48 * 44, 81);
  for (WeightFormat f : kReduced) {
    mha::MultiheadAttention layer(decoder(f), 1);
    layer.set_parameter("q_proj.weight", w.data(), w.size());
    const std::vector<float> back = layer.parameter("q_proj.weight");
    const mha::PackedWeight packed = mha::pack_reduced(w.data(), 48, 44, f);
    std::vector<float> deq(w.size());
    mha::unpack_weight(packed, deq.data());
    EXPECT_EQ(back, deq) << name_of(f);
    mha::MultiheadAttention full(decoder(WeightFormat::f32), 1);
    EXPECT_LT(layer.weight_bytes() * (f == WeightFormat::int8 ? 3 : 1.9), full.weight_bytes()) << name_of(f);
  }
}

TEST(WeightFormats, ValuesAFormatCannotHoldAreRefusedAndNothingChanges) {
  mha::MultiheadAttention f16(decoder(WeightFormat::f16), 1), int8(decoder(WeightFormat::int8), 1);
  const std::vector<float> before = f16.parameter("k_proj.weight");
  auto w = random_vector(before.size(), 91);
  w[5] = 1e5f;
  try {
    f16.set_parameter("k_proj.weight", w.data(), w.size());
    ADD_FAILURE() << "no error";
  } catch (const mha::Error& e) {
    EXPECT_EQ(e.kind(), mha::Error::Kind::range);
    EXPECT_NE(std::string(e.what()).find("'k_proj.weight' value 5"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f16.parameter("k_proj.weight"), before);
  w[5] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(int8.set_parameter("k_proj.weight", w.data(), w.size()), mha::Error);
  EXPECT_THROW(int8.check_parameter("k_proj.weight", w.data(), w.size()), mha::Error);
  w[5] = 0.5f;
  EXPECT_NO_THROW(int8.check_parameter("k_proj.weight", w.data(), w.size()));
}

}  // namespace
