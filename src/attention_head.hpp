// Scaled dot-product attention for one (batch, head), tiled with an online
// softmax: FlashAttention (Dao et al. 2022, algorithm 1; Milakov & Gimelshein
// 2018 for the running max and sum). Blocks of query rows meet blocks of keys;
// each row keeps a running max m, a running sum l and an unnormalised output
// O, rescaled by exp(m_old - m_new) when a block raises the max, and divided
// by l once at the end. The Lq x S score matrix never exists: memory is
// O(block x S) only when weights are asked for, O(block x block) otherwise.
#pragma once

#include <cstddef>
#include <vector>

#include "masks.hpp"

namespace mha {

struct HeadInput {
  // Rows of this head's slice, each `*_stride` floats apart.
  const float* q;  // [Lq, d], already scaled by 1/sqrt(d)
  std::size_t q_stride;
  const float* k;  // [Lk, d]
  std::size_t k_stride;
  const float* v;  // [Lk, d]
  std::size_t v_stride;
  const float* bias_k;  // [d] or nullptr: key Lk
  const float* bias_v;  // [d] or nullptr
  bool zero_attn;       // one more key (after bias_k) whose key and value are 0
  std::size_t lq, lk, d;
};

struct HeadOutput {
  float* z;  // [Lq, d] rows z_stride apart: this head's columns of concat
  std::size_t z_stride;
  // Weights [Lq, S] rows weights_stride apart, or nullptr. Per head: written;
  // averaged over heads: weights_scale (1/H) times this head's are added.
  float* weights;
  std::size_t weights_stride;
  bool weights_add;
  float weights_scale;
  bool nan_for_fully_masked;
};

// Floats pack_head writes for a head with S keys of width d.
std::size_t packed_head_size(std::size_t s, std::size_t d);

// This head's S keys as GEMM panels (K^T, d deep) followed by its values as
// panels (V, S deep, d padded to whole panels); the bias_kv and zero keys
// included, padding zero.
void pack_head(const HeadInput& in, float* packed);

// Per-thread scratch, grown on demand and reused call after call.
struct HeadScratch {
  std::vector<float> tile, wide, out, row_max, row_sum;
};

// Attention of query rows [i0, i1) over the packed keys and values.
void attend_rows(const HeadInput& in, const float* packed, std::size_t i0, std::size_t i1,
                 const MaskContext& masks, const HeadOutput& out, HeadScratch& scratch);

}  // namespace mha
