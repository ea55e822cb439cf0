// Every mask of ForwardOptions, applied to one query row's scores over a range
// of keys. Only the first Lk keys can be masked: the bias_kv and zero-attention
// keys after them never are (PyTorch pads its masks with 0 there).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "buffers.hpp"
#include "kernels.hpp"
#include "mha.hpp"

namespace mha {

// An additive mask value in the scores' base-2 units. A finite value stays
// finite: Hugging Face pads with finfo(float32).min, which times log2(e)
// would overflow to -inf and make a row of padding fully masked, where
// PyTorch's scores are all that same finite value and its weights uniform.
inline float mask_in_base2(float add) {
  const float scaled = kLog2e * add;
  constexpr float kMax = std::numeric_limits<float>::max();
  return std::isinf(scaled) && !std::isinf(add) ? (add > 0 ? kMax : -kMax) : scaled;
}

struct MaskContext {
  const ForwardOptions* options;
  std::int64_t batch_index;  // b
  std::int64_t head_index;   // h
  std::int64_t num_heads;    // H
  std::int64_t lq, lk;
};

// tile[j - j0][i - i0] += mask(b, h, i, j) for keys j in [j0, min(j1, Lk))
// and queries i in [i0, i1): the scores of a block of keys (rows ldt apart)
// against a block of queries (one column each). Added, never assigned: a
// blocked +inf score becomes NaN, as PyTorch's additive masks make it. The
// scores are in the softmax's base-2 units, so a float mask's values are
// too (times kLog2e; -inf stays -inf).
inline void add_masks(float* tile, std::size_t ldt, const MaskContext& m, std::int64_t i0, std::int64_t i1,
                      std::int64_t j0, std::int64_t j1) {
  const ForwardOptions& o = *m.options;
  const std::int64_t b = m.batch_index, lk = m.lk, cols = i1 - i0;
  j1 = std::min(j1, lk);
  // One pass over the keys per kind of mask present: an unmasked call (the
  // teaching shape's 24 tiny heads) costs four tests, not four per key.
  auto row = [&](std::int64_t j) { return tile + std::size_t(j - j0) * ldt; };  // row(j)[i - i0]
  if (o.attn.present()) {
    // [Lq, Lk] shared by every (b, h), or [B*H, Lq, Lk] indexed b*H + h: a column of it.
    const std::int64_t first = o.attn_per_head ? (b * m.num_heads + m.head_index) * m.lq : 0;
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < cols; ++c) {
        const std::int64_t at = (first + i0 + c) * lk + j;
        if (o.attn.blocked) {
          if (o.attn.blocked[at]) row(j)[c] += kNegInf;
        } else {
          row(j)[c] += mask_in_base2(o.attn.additive[at]);
        }
      }
  }
  if (o.key_padding.present())  // [B, Lk]: one value for the whole row of queries
    for (std::int64_t j = j0; j < j1; ++j) {
      const std::int64_t at = b * lk + j;
      const float add = o.key_padding.blocked ? (o.key_padding.blocked[at] ? kNegInf : 0.0f)
                                              : mask_in_base2(o.key_padding.additive[at]);
      if (add != 0.0f)
        for (std::int64_t c = 0; c < cols; ++c) row(j)[c] += add;
    }
  if (o.is_causal)  // top-left aligned, as torch.tril(ones(Lq, Lk)): key j is blocked for queries i < j
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < std::min(cols, j - i0); ++c) row(j)[c] += kNegInf;
  if (o.valid_lens != nullptr)
    for (std::int64_t j = j0; j < j1; ++j) {
      if (o.valid_lens_per_query) {
        for (std::int64_t c = 0; c < cols; ++c)
          if (j >= o.valid_lens[b * m.lq + i0 + c]) row(j)[c] += kNegInf;
      } else if (j >= o.valid_lens[b]) {
        for (std::int64_t c = 0; c < cols; ++c) row(j)[c] += kNegInf;
      }
    }
}

// The first key that every query row in [i0, i1) has blocked for good, as far
// as causal masking and per-sequence valid lengths tell: keys in [that, Lk)
// need not be computed at all.
inline std::int64_t first_dead_key(const MaskContext& m, std::int64_t i0, std::int64_t i1) {
  const ForwardOptions& o = *m.options;
  std::int64_t dead = m.lk;
  if (o.is_causal) dead = std::min(dead, std::max<std::int64_t>(i1, 0));  // row i1-1 sees keys <= i1-1
  if (o.valid_lens != nullptr) {
    std::int64_t len = 0;
    if (o.valid_lens_per_query) {
      for (std::int64_t i = i0; i < i1; ++i) len = std::max<std::int64_t>(len, o.valid_lens[m.batch_index * m.lq + i]);
    } else {
      len = o.valid_lens[m.batch_index];
    }
    dead = std::min(dead, std::max<std::int64_t>(len, 0));
  }
  return dead;
}

}  // namespace mha
