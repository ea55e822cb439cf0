// The SIMD forward pass against the double-precision reference
// (src/reference.cpp): what the native layer suites share.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "mha.hpp"
#include "reference.hpp"

#include "random_vector.hpp"

// Biases start at 0 (as PyTorch's) and norms at 1; give them values so
// they are exercised.
inline void randomise_biases(mha::MultiheadAttention& layer, unsigned seed) {
  for (const auto& name : layer.parameter_names()) {
    const bool bias = name.find("bias") != std::string::npos, norm = name.find("_norm.") != std::string::npos;
    const bool sinks = name == "sinks";
    if (!bias && !norm && !sinks) continue;
    auto v = random_vector(layer.parameter(name).size(), seed++, norm ? 0.5f : sinks ? -1.0f : -0.5f,
                           norm ? 1.5f : sinks ? 2.0f : 0.5f);
    layer.set_parameter(name, v.data(), v.size());
  }
}

struct Case {
  mha::Config config;
  std::int64_t batch, lq, lk;
  bool cross;
};

struct Results {
  std::vector<float> output, weights, heads, concat;
};

inline Results run(bool reference, mha::MultiheadAttention& layer, const mha::ForwardInput& in,
            const mha::ForwardOptions& o) {
  const auto& c = layer.config();
  const std::size_t rows = in.batch * in.query_len, s = layer.source_len(in.key_len);
  const std::size_t width = c.num_heads * c.head_dim;  // H*d of concat and the heads
  Results r;
  r.output.assign(rows * c.embed_dim, -7.0f);
  r.heads.assign(rows * width, -7.0f);
  r.concat.assign(rows * width, -7.0f);
  r.weights.assign(rows * s * (o.need_weights == mha::NeedWeights::per_head ? c.num_heads : 1), -7.0f);
  mha::ForwardOutputs out{r.output.data(), r.weights.data(), r.heads.data(), r.concat.data()};
  if (o.need_weights == mha::NeedWeights::none) out.weights = nullptr;
  if (reference)
    mha::reference::forward(layer, in, o, out);
  else
    layer.forward(in, o, out);
  return r;
}

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << what << "[" << i << "] should be NaN, got " << got[i];
      continue;
    }
    ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-5f * std::abs(want[i])) << what << "[" << i << "]";
  }
}

inline void compare_with_reference(const Case& tc, mha::ForwardOptions o, unsigned seed) {
  mha::MultiheadAttention layer(tc.config, seed);
  randomise_biases(layer, seed + 100);
  const auto& c = layer.config();
  auto query = random_vector(tc.batch * tc.lq * c.embed_dim, seed + 1);
  auto key = random_vector(tc.batch * tc.lk * c.kdim, seed + 2);
  auto value = random_vector(tc.batch * tc.lk * c.vdim, seed + 3);
  mha::ForwardInput in{tc.batch, tc.lq, tc.cross ? tc.lk : tc.lq, query.data(),
                       tc.cross ? key.data() : nullptr, tc.cross ? value.data() : nullptr};
  const Results fast = run(false, layer, in, o), slow = run(true, layer, in, o);
  expect_close(fast.output, slow.output, "output");
  expect_close(fast.heads, slow.heads, "heads");
  expect_close(fast.concat, slow.concat, "concat");
  if (o.need_weights != mha::NeedWeights::none) expect_close(fast.weights, slow.weights, "weights");
}

