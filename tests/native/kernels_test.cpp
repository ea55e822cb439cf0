// Each SIMD primitive against its scalar oracle, at sizes around the lane
// count (4 for f32x4/SSE) and the micro-kernel's 5-row x 8-column tile, so
// every whole-batch path and every scalar tail runs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels.hpp"

#include "random_vector.hpp"

namespace {

const std::size_t kSizes[] = {1, 3, 4, 5, 7, 8, 9, 63, 64, 65};

// Tolerance for a sum of n products of values in [-1, 1]: float32 rounding grows ~sqrt(n).
float sum_tolerance(std::size_t n) { return 1e-6f * float(n) + 1e-6f; }

TEST(Kernels, AxpyMatchesScalarAtEverySize) {
  for (std::size_t n : kSizes) {
    auto x = random_vector(n, 3), y1 = random_vector(n, 4), y2 = y1;
    mha::simd::axpy(0.37f, x.data(), y1.data(), n);
    mha::scalar::axpy(0.37f, x.data(), y2.data(), n);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 1e-6f) << "n=" << n << " i=" << i;
  }
}

TEST(Kernels, ScaleMatchesScalarAtEverySize) {
  for (std::size_t n : kSizes) {
    auto x1 = random_vector(n, 5), x2 = x1;
    mha::simd::scale(-1.75f, x1.data(), n);
    mha::scalar::scale(-1.75f, x2.data(), n);
    for (std::size_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(x1[i], x2[i]) << "n=" << n << " i=" << i;
  }
}

TEST(Kernels, RmsNormMatchesScalarAtEveryWidth) {
  for (std::size_t n : kSizes) {
    auto x1 = random_vector(n, 6, -3.0f, 3.0f), x2 = x1, w = random_vector(n, 7, 0.5f, 1.5f);
    mha::simd::rms_norm(x1.data(), n, w.data(), 1e-6f);
    mha::scalar::rms_norm(x2.data(), n, w.data(), 1e-6f);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(x1[i], x2[i], 2e-6f * (1 + std::abs(x2[i]))) << "n=" << n << " i=" << i;
  }
}

TEST(Kernels, RotateHalfMatchesScalarAtEveryWidthAndKeepsTheRestUnchanged) {
  for (std::size_t half : {1, 3, 4, 5, 8, 9, 32}) {
    const std::size_t r = 2 * half, d = r + 3;  // partial rotary: 3 features pass through
    auto x1 = random_vector(d, 8), x2 = x1, angle = random_vector(half, 9, -3.0f, 3.0f);
    std::vector<float> c(half), s(half);
    for (std::size_t t = 0; t < half; ++t) c[t] = std::cos(angle[t]), s[t] = std::sin(angle[t]);
    mha::simd::rotate_half(x1.data(), r, c.data(), s.data());
    mha::scalar::rotate_half(x2.data(), r, c.data(), s.data());
    // a*c - b*s may cancel, and a build with FMA contracts it (one rounding
    // fewer): within float32 rounding of the terms, not of the result.
    for (std::size_t i = 0; i < d; ++i) EXPECT_NEAR(x1[i], x2[i], 1e-6f) << "r=" << r << " i=" << i;
    auto x0 = random_vector(d, 8);
    for (std::size_t i = r; i < d; ++i) EXPECT_EQ(x1[i], x0[i]);
  }
}

TEST(Kernels, ExpShiftedSumMatchesScalarAtEverySize) {
  for (std::size_t n : kSizes) {
    auto x1 = random_vector(n, 7, -30.0f, 0.0f), x2 = x1;
    const float s1 = mha::simd::exp_shifted_sum(x1.data(), n, 0.5f);
    const float s2 = mha::scalar::exp_shifted_sum(x2.data(), n, 0.5f);
    EXPECT_NEAR(s1, s2, 1e-6f * std::abs(s2)) << "n=" << n;
    for (std::size_t i = 0; i < n; ++i)
      EXPECT_NEAR(x1[i], x2[i], 2e-7f * std::abs(x2[i]) + 1e-30f) << "n=" << n << " i=" << i;
  }
}

TEST(Kernels, ExpShiftedSumOfMinusInfinityIsZero) {
  std::vector<float> x(9, -std::numeric_limits<float>::infinity());
  x[4] = 0.0f;
  EXPECT_FLOAT_EQ(mha::simd::exp_shifted_sum(x.data(), x.size(), 0.0f), 1.0f);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], i == 4 ? 1.0f : 0.0f);
}

// linear = GEMM + bias. Rows m cross the 5-row group and the 160-row cache
// block, columns n the 8-column panel. (A depth too deep for one cache
// block: WeightFormats.LinearSplitsADepthTooDeepForOneBlock.)
TEST(Kernels, LinearMatchesScalarAcrossTileEdges) {
  for (std::size_t m : {1, 3, 4, 5, 6, 9, 65, 81, 161, 323})
    for (std::size_t n : {1, 3, 4, 5, 7, 8, 9, 64, 65})
      for (std::size_t k : {1, 5, 8, 63, 256, 257, 600}) {
        const std::size_t x_stride = k + 2, y_stride = n + 3;  // strided rows, as the layer uses
        auto x = random_vector(m * x_stride, 11);
        auto w = random_vector(n * k, 12);
        auto bias = random_vector(n, 13);
        const auto packed = mha::pack_weight(w.data(), n, k);
        std::vector<float> y1(m * y_stride, 42.0f), y2(m * y_stride, 42.0f);
        mha::simd::linear(x.data(), m, x_stride, packed, bias.data(), y1.data(), y_stride);
        mha::scalar::linear(x.data(), m, x_stride, w.data(), n, k, bias.data(), y2.data(), y_stride);
        for (std::size_t i = 0; i < m; ++i)
          for (std::size_t j = 0; j < y_stride; ++j)
            ASSERT_NEAR(y1[i * y_stride + j], y2[i * y_stride + j], sum_tolerance(k))
                << "m=" << m << " n=" << n << " k=" << k << " at " << i << "," << j
                << (j >= n ? " (padding must stay untouched)" : "");
      }
}

// Decoding's in-place attention: rows of a cache, d around the lane count
// and the 8-batch chunks of weighted_rows, key counts around 4 at a time
// and the 32-key blocks; rows long enough to be swept ahead (d >= 128).
TEST(Kernels, DotAndWeightedRowsMatchScalarOverStridedRows) {
  for (std::size_t d : {1, 3, 4, 7, 8, 31, 32, 33, 64, 100, 128, 130})
    for (std::size_t keys : {0, 1, 3, 4, 5, 9, 37, 64}) {
      const std::size_t stride = d + 5;
      auto q = random_vector(d, 91), rows = random_vector(keys * stride + 1, 92), p = random_vector(keys, 93, 0.0f, 1.0f);
      std::vector<float> s1(keys), s2(keys), z1(d), z2(d);
      mha::simd::dot_rows(q.data(), rows.data(), stride, keys, d, s1.data());
      mha::scalar::dot_rows(q.data(), rows.data(), stride, keys, d, s2.data());
      for (std::size_t j = 0; j < keys; ++j) ASSERT_NEAR(s1[j], s2[j], sum_tolerance(d)) << "d=" << d << " key " << j;
      mha::simd::weighted_rows(p.data(), rows.data(), stride, keys, d, z1.data());
      mha::scalar::weighted_rows(p.data(), rows.data(), stride, keys, d, z2.data());
      for (std::size_t t = 0; t < d; ++t) ASSERT_NEAR(z1[t], z2[t], sum_tolerance(keys)) << "d=" << d << " keys=" << keys << " t=" << t;
    }
}

TEST(Kernels, FourQueryDotAndWeightedRowsMatchScalar) {
  for (std::size_t d : {1, 3, 4, 7, 8, 9, 64, 100, 128, 257})
    for (std::size_t keys : {0, 1, 5, 37, 64}) {
      const std::size_t stride = d + 3;
      auto qs = random_vector(4 * d, 94), rows = random_vector(keys * stride + 1, 95), p = random_vector(keys * 4, 96, 0.0f, 1.0f);
      const float* q[4] = {qs.data(), qs.data() + d, qs.data() + 2 * d, qs.data() + 3 * d};
      std::vector<float> s1(keys * 4), s2(keys * 4), z1(4 * d), z2(4 * d);
      mha::simd::dot_rows4(q, rows.data(), stride, keys, d, s1.data());
      mha::scalar::dot_rows4(q, rows.data(), stride, keys, d, s2.data());
      for (std::size_t i = 0; i < s1.size(); ++i) ASSERT_NEAR(s1[i], s2[i], sum_tolerance(d)) << "d=" << d << " at " << i;
      float* z1s[4] = {z1.data(), z1.data() + d, z1.data() + 2 * d, z1.data() + 3 * d};
      float* z2s[4] = {z2.data(), z2.data() + d, z2.data() + 2 * d, z2.data() + 3 * d};
      mha::simd::weighted_rows4(p.data(), rows.data(), stride, keys, d, z1s);
      mha::scalar::weighted_rows4(p.data(), rows.data(), stride, keys, d, z2s);
      for (std::size_t i = 0; i < z1.size(); ++i) ASSERT_NEAR(z1[i], z2[i], sum_tolerance(keys)) << "d=" << d << " keys=" << keys << " at " << i;
    }
}

TEST(Kernels, TwoQueryDotAndWeightedRowsMatchScalarAndLeaveTheirLayout) {
  for (std::size_t d : {1, 3, 4, 7, 16, 17, 64, 100, 128, 257})
    for (std::size_t keys : {0, 1, 2, 5, 37, 64}) {
      const std::size_t stride = d + 3;
      auto qs = random_vector(2 * d, 97), rows = random_vector(keys * stride + 1, 98), p = random_vector(keys * 4, 99, 0.0f, 1.0f);
      const float* q[2] = {qs.data(), qs.data() + d};
      std::vector<float> s1(keys * 4, 7.0f), s2(keys * 4), z1(2 * d), z2(2 * d);
      mha::simd::dot_rows2(q, rows.data(), stride, keys, d, s1.data());
      mha::scalar::dot_rows2(q, rows.data(), stride, keys, d, s2.data());
      for (std::size_t i = 0; i < s1.size(); ++i) ASSERT_NEAR(s1[i], s2[i], sum_tolerance(d)) << "d=" << d << " at " << i;
      float* z1s[2] = {z1.data(), z1.data() + d};
      float* z2s[2] = {z2.data(), z2.data() + d};
      mha::simd::weighted_rows2(p.data(), rows.data(), stride, keys, d, z1s);
      mha::scalar::weighted_rows2(p.data(), rows.data(), stride, keys, d, z2s);
      for (std::size_t i = 0; i < z1.size(); ++i) ASSERT_NEAR(z1[i], z2[i], sum_tolerance(keys)) << "d=" << d << " keys=" << keys << " at " << i;
    }
}

TEST(Kernels, LinearWithoutBiasAddsNothing) {
  auto x = random_vector(5 * 6, 21), w = random_vector(7 * 6, 22);
  const auto packed = mha::pack_weight(w.data(), 7, 6);
  std::vector<float> y1(5 * 7), y2(5 * 7);
  mha::simd::linear(x.data(), 5, 6, packed, nullptr, y1.data(), 7);
  mha::scalar::linear(x.data(), 5, 6, w.data(), 7, 6, nullptr, y2.data(), 7);
  for (std::size_t i = 0; i < y1.size(); ++i) EXPECT_NEAR(y1[i], y2[i], 1e-5f);
}

}  // namespace

namespace {

// The attention's GEMM shape: O += P . V, accumulating onto C, over panels
// of a B that is not a packed weight (panel stride k * 8: V packed per head),
// with a row stride of A and C wider than the product.
TEST(Kernels, GemmAccumulatesOntoC) {
  for (std::size_t m : {1, 3, 4, 5, 8, 67})
    for (std::size_t k : {1, 7, 64, 65, 300})
      for (std::size_t n : {8, 16, 72}) {
        const std::size_t lda = k + 1, ldc = n + 2;
        auto a = random_vector(m * lda, 31), b = random_vector(k * n, 32);
        auto c1 = random_vector(m * ldc, 33), c2 = c1;
        const mha::Panels panels{b.data(), k * mha::PackedWeight::kPanel};
        mha::simd::gemm(a.data(), m, lda, panels, k, n, nullptr, true, c1.data(), ldc);
        mha::scalar::gemm(a.data(), m, lda, panels, k, n, nullptr, true, c2.data(), ldc);
        for (std::size_t i = 0; i < c1.size(); ++i)
          ASSERT_NEAR(c1[i], c2[i], sum_tolerance(k)) << "m=" << m << " k=" << k << " n=" << n << " at " << i;
      }
}

TEST(Kernels, GemmOverPackedPanelsWritesOnlyTheFirstNColumns) {
  for (std::size_t n : {1, 3, 5, 8, 9, 63, 64, 65}) {
    const std::size_t m = 5, k = 9, ldc = 70;
    auto a = random_vector(m * k, 41), w = random_vector(n * k, 42);
    const auto packed = mha::pack_weight(w.data(), n, k);
    std::vector<float> c1(m * ldc, 9.0f), c2(m * ldc, 9.0f);
    mha::simd::gemm(a.data(), m, k, mha::panels_of(packed), k, n, nullptr, false, c1.data(), ldc);
    mha::scalar::gemm(a.data(), m, k, mha::panels_of(packed), k, n, nullptr, false, c2.data(), ldc);
    for (std::size_t i = 0; i < c1.size(); ++i) ASSERT_NEAR(c1[i], c2[i], sum_tolerance(k)) << "n=" << n;
  }
}

// A operands already in row groups, as attention builds them: keys packed
// once per head (k_stride 5) and the probabilities P^T read in place
// (group_stride 5, k_stride the tile width), accumulating onto C or not.
TEST(Kernels, GemmOverRowGroupsMatchesScalarForPackedAndInPlaceLayouts) {
  constexpr std::size_t R = mha::kGemmRows;
  for (std::size_t m : {1, 4, 5, 6, 11, 80})
    for (std::size_t k : {1, 3, 64, 81})
      for (std::size_t n : {8, 16, 40})
        for (bool in_place : {false, true})
          for (bool accumulate : {false, true}) {
            const std::size_t groups = (m + R - 1) / R, width = groups * R + 3;
            const mha::RowGroups a{nullptr, in_place ? R : k * R, in_place ? width : R};
            auto a_data = random_vector(in_place ? k * width : groups * k * R, 51);
            auto b = random_vector(k * n, 52), bias = random_vector(n, 53);
            const std::size_t ldc = n + 1;
            auto c1 = random_vector(m * ldc, 54), c2 = c1;
            const mha::RowGroups ga{a_data.data(), a.group_stride, a.k_stride};
            const mha::Panels panels{b.data(), k * mha::PackedWeight::kPanel};
            mha::simd::gemm(ga, m, panels, k, n, bias.data(), accumulate, c1.data(), ldc);
            mha::scalar::gemm(ga, m, panels, k, n, bias.data(), accumulate, c2.data(), ldc);
            for (std::size_t i = 0; i < c1.size(); ++i)
              ASSERT_NEAR(c1[i], c2[i], sum_tolerance(k)) << "m=" << m << " k=" << k << " n=" << n
                                                          << " in_place=" << in_place << " at " << i;
          }
}

// The online softmax step over score columns: two blocks in a row, the second
// raising some maxima, so the rescale factors are exercised; masked (-inf)
// scores, a column with nothing allowed yet, and a NaN.
TEST(Kernels, SoftmaxColumnsMatchesScalarAcrossTwoBlocks) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  for (std::size_t keys : {1, 4, 5, 9, 80})
    for (std::size_t cols : {4, 8, 12, 80}) {
      const std::size_t ldt = cols + 4;
      std::vector<float> m1(cols, -inf), l1(cols, 0.0f), r1(cols), m2 = m1, l2 = l1, r2(cols);
      for (int block = 0; block < 2; ++block) {
        auto t1 = random_vector(keys * ldt, 61 + block, -8.0f, 4.0f + 4.0f * block);
        for (std::size_t j = 0; j < keys; ++j) {
          t1[j * ldt + 1] = -inf;                     // column 1: nothing allowed, ever
          if (block == 0) t1[j * ldt + 2] = -inf;     // column 2: nothing until the second block
          if (j % 3 == 0) t1[j * ldt + 3] = -inf;     // column 3: some keys masked
        }
        if (block == 1 && cols > 4) t1[(keys - 1) * ldt + 4] = std::nanf("");  // column 4: a NaN score
        auto t2 = t1;
        mha::simd::softmax_columns(t1.data(), ldt, keys, cols, m1.data(), l1.data(), r1.data());
        mha::scalar::softmax_columns(t2.data(), ldt, keys, cols, m2.data(), l2.data(), r2.data());
        for (std::size_t j = 0; j < keys; ++j)
          for (std::size_t c = 0; c < cols; ++c) {
            const float got = t1[j * ldt + c], want = t2[j * ldt + c];
            if (std::isnan(want)) ASSERT_TRUE(std::isnan(got)) << "keys=" << keys << " " << j << "," << c;
            else ASSERT_NEAR(got, want, 3e-7f * want + 1e-30f) << "keys=" << keys << " " << j << "," << c;
          }
        for (std::size_t c = 0; c < cols; ++c) {
          ASSERT_EQ(m1[c], m2[c]) << "column " << c;
          if (std::isnan(l2[c])) ASSERT_TRUE(std::isnan(l1[c])) << "column " << c;
          else ASSERT_NEAR(l1[c], l2[c], 2e-7f * float(keys + 1) * l2[c]) << "column " << c;
          if (!std::isnan(r2[c])) ASSERT_NEAR(r1[c], r2[c], 3e-7f * r2[c]) << "column " << c;
        }
      }
      EXPECT_EQ(m1[1], -inf);  // nothing allowed: max stays -inf, sum 0
      EXPECT_EQ(l1[1], 0.0f);
      EXPECT_GT(l1[2], 0.0f);  // allowed from the second block on
      if (cols > 4) EXPECT_TRUE(std::isnan(l1[4]));  // a NaN score makes the column's sum NaN
    }
}

// Narrow heads' scores, four queries in the lanes, at every head width the
// narrow path takes and key counts around the lane count, keys packed (d
// apart) and not.
TEST(Kernels, NarrowScoresMatchScalarAtEveryWidth) {
  constexpr std::size_t Q = mha::kNarrowQueries;
  for (std::size_t d = 1; d <= mha::kNarrowWidth; ++d)
    for (std::size_t keys : {0, 1, 3, 4, 9})
      for (std::size_t k_stride : {d, d + 3}) {
        auto qt = random_vector(d * Q, 71), k = random_vector(keys * (d + 3) + d, 72);
        std::vector<float> s1(keys * Q + 1, 9.0f), s2 = s1;
        mha::simd::narrow_scores(qt.data(), d, k.data(), k_stride, keys, s1.data());
        mha::scalar::narrow_scores(qt.data(), d, k.data(), k_stride, keys, s2.data());
        for (std::size_t i = 0; i < s1.size(); ++i)
          ASSERT_NEAR(s1[i], s2[i], sum_tolerance(d)) << "d=" << d << " keys=" << keys << " i=" << i;
      }
}

// Their softmax and normalised P . V in one call, at every width: lane 0
// plain scores, lane 1 every key masked (max -inf, sum 0, weights 0, output
// the fill), lane 2 some keys masked, lane 3 a NaN score (sum and output NaN).
TEST(Kernels, NarrowSoftmaxValuesMatchesScalarAtEveryWidth) {
  constexpr std::size_t Q = mha::kNarrowQueries;
  constexpr float inf = std::numeric_limits<float>::infinity(), kFill = -3.0f;
  for (std::size_t d = 1; d <= mha::kNarrowWidth; ++d)
    for (std::size_t keys : {0, 1, 3, 4, 9, 40}) {
      auto p1 = random_vector(keys * Q, 73, -20.0f, 6.0f), v = random_vector(keys * (d + 2) + 1, 74);
      for (std::size_t j = 0; j < keys; ++j) {
        p1[j * Q + 1] = -inf;
        if (j % 2 == 0) p1[j * Q + 2] = -inf;
      }
      if (keys > 0) p1[(keys - 1) * Q + 3] = std::nanf("");
      auto p2 = p1;
      std::vector<float> m1(Q, 7.0f), l1(Q, 7.0f), o1(d * Q, 7.0f), m2 = m1, l2 = l1, o2 = o1;
      mha::simd::narrow_softmax_values(p1.data(), keys, v.data(), d + 2, d, kFill, m1.data(), l1.data(), o1.data());
      mha::scalar::narrow_softmax_values(p2.data(), keys, v.data(), d + 2, d, kFill, m2.data(), l2.data(), o2.data());
      const std::string at = "d=" + std::to_string(d) + " keys=" + std::to_string(keys);
      for (std::size_t i = 0; i < p1.size(); ++i) {
        if (std::isnan(p2[i])) ASSERT_TRUE(std::isnan(p1[i])) << at << " i=" << i;
        else ASSERT_NEAR(p1[i], p2[i], 3e-7f * p2[i] + 1e-30f) << at << " i=" << i;
      }
      for (std::size_t c = 0; c < Q; ++c) {
        ASSERT_EQ(m1[c], m2[c]) << at << " column " << c;
        if (std::isnan(l2[c])) ASSERT_TRUE(std::isnan(l1[c])) << at << " column " << c;
        else ASSERT_NEAR(l1[c], l2[c], 2e-7f * float(keys + 1) * l2[c]) << at << " column " << c;
      }
      for (std::size_t i = 0; i < o1.size(); ++i) {
        if (std::isnan(o2[i])) ASSERT_TRUE(std::isnan(o1[i])) << at << " i=" << i;
        else ASSERT_NEAR(o1[i], o2[i], sum_tolerance(keys + 1) * (1.0f + std::abs(o2[i]))) << at << " i=" << i;
      }
      EXPECT_EQ(m1[1], -inf) << at;  // every key masked
      EXPECT_EQ(l1[1], 0.0f) << at;
      for (std::size_t t = 0; t < d; ++t) EXPECT_EQ(o1[t * Q + 1], kFill) << at;
      if (keys > 0) EXPECT_TRUE(std::isnan(l1[3])) << at;  // a NaN score: its column's sum is NaN
    }
}

}  // namespace

namespace {

TEST(Kernels, Exp2IsAccurateDownToTheSmallestNormalFloat) {
  // Softmax's exponents, in base 2: a score minus its column's max, so from 0 down.
  std::vector<float> x;
  for (float v = -126.0f; v <= 0.0f; v += 0.0137f) x.push_back(v);
  for (float v = -1.0f; v <= 0.0f; v += 1.0f / 4096) x.push_back(v);  // densely over one period of 2^f
  x.push_back(0.0f);
  std::vector<float> e = x;
  mha::simd::exp_shifted_sum(e.data(), e.size(), 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp2(double(x[i]));
    ASSERT_NEAR(e[i], want, 2e-7 * want) << "2^(" << x[i] << ")";  // under 2 ulp (ulp of 1 = 1.2e-7)
  }
}

TEST(Kernels, Exp2OfTheEdgesIsExact) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x{-inf, -1000.0f, -126.5f, 0.0f, std::nanf(""), -1.0f, -2.0f, -3.0f, 1.0f};
  // shift 1: the exponents are x - 1, all <= 0 as softmax passes them.
  mha::simd::exp_shifted_sum(x.data(), x.size(), 1.0f);
  EXPECT_EQ(x[0], 0.0f);  // a masked score weighs exactly nothing
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_EQ(x[2], 0.0f);  // below FLT_MIN: 0
  EXPECT_FLOAT_EQ(x[3], 0.5f);
  EXPECT_TRUE(std::isnan(x[4]));
  EXPECT_FLOAT_EQ(x[5], 0.25f);
  EXPECT_EQ(x[8], 1.0f);  // the column's max weighs exactly 1 before normalising
  // A +inf score is its own row's max: inf - inf is NaN, as in PyTorch's softmax.
  std::vector<float> y{inf, 0.0f, -inf, 2.0f};
  mha::simd::exp_shifted_sum(y.data(), y.size(), inf);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[3], 0.0f);
}

}  // namespace
