// What happens to q and k between the projections and the scores, per head
// and in this order (shared/DECODER_ATTENTION.md): QK-norm (Qwen3), then
// rotary position embedding at each row's position (RoFormer; Llama, Qwen,
// Mistral, Gemma, Phi, GPT-NeoX). The score scale is not here: it is folded
// into Wq, or with QK-norm into q_norm (Parameters::prepare).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mha.hpp"

namespace mha {

// inv_freq[t] = base^(-2t/r) for t < r/2, with the rope's scaling applied
// (linear: / factor; llama3, yarn, longrope: Hugging Face's
// _compute_llama3_parameters, _compute_yarn_parameters and
// _compute_longrope_parameters), in double precision, as the angles are.
// longrope: its long factors when long_context, else its short ones.
std::vector<double> rope_inverse_frequencies(const Rope& rope, bool long_context = false);

// Whether a call whose largest position is `largest_position` rotates by
// longrope's long factors: when it reaches past the original context, as
// Hugging Face decides per forward call (max(position_ids) + 1 >
// original_max_position_embeddings). Keys cached by earlier calls keep
// the rotation they were given. False for every other scaling.
bool rope_long_context(const Rope& rope, std::int64_t largest_position);

struct QueryKeyTransform {
  std::size_t heads = 0, kv_heads = 0, d = 0;
  const float* q_norm = nullptr;  // [d], or nullptr: no QK-norm
  const float* k_norm = nullptr;  // [d]
  float eps = 0;
  std::size_t rope_dim = 0;       // r; 0 = no RoPE
  Rope::Layout layout = Rope::Layout::half;
  const double* inv_freq = nullptr;  // [r/2]
  double attention_factor = 1.0;     // cos and sin times it (yarn, longrope)

  bool active() const { return q_norm != nullptr || rope_dim > 0; }
};

// Transforms, in place, rows [r0, r1) of q (heads * d features, rows
// q_stride apart) and the same rows of k (kv_heads * d, k_stride apart),
// row r at position position(r); either may be null. `angles` is scratch of r
// floats (the cosines, then the sines, of one row).
template <typename Position>
void transform_queries_keys(const QueryKeyTransform& t, float* q, std::size_t q_stride, float* k, std::size_t k_stride,
                            std::size_t r0, std::size_t r1, Position position, float* angles);

// One row's angles: cos and sin of position * inv_freq[t], times the
// attention factor, each computed in double and rounded to float.
void rope_angles(const double* inv_freq, std::size_t half, double attention_factor, std::int64_t position,
                 float* cos, float* sin);

// One head's features, x[0, d): norm (if any), then rotation (if any).
void transform_head(const QueryKeyTransform& t, float* x, const float* norm, const float* cos, const float* sin);

template <typename Position>
void transform_queries_keys(const QueryKeyTransform& t, float* q, std::size_t q_stride, float* k, std::size_t k_stride,
                            std::size_t r0, std::size_t r1, Position position, float* angles) {
  const std::size_t half = t.rope_dim / 2;
  for (std::size_t r = r0; r < r1; ++r) {
    if (half > 0) rope_angles(t.inv_freq, half, t.attention_factor, std::int64_t(position(r)), angles, angles + half);
    if (q != nullptr)
      for (std::size_t h = 0; h < t.heads; ++h) transform_head(t, q + r * q_stride + h * t.d, t.q_norm, angles, angles + half);
    if (k != nullptr)
      for (std::size_t h = 0; h < t.kv_heads; ++h)
        transform_head(t, k + r * k_stride + h * t.d, t.k_norm, angles, angles + half);
  }
}

}  // namespace mha
