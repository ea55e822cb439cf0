// Every mask of ForwardOptions, applied to one query row's scores over a range
// of keys. Only the first Lk keys can be masked: the bias_kv and zero-attention
// keys after them never are (PyTorch pads its masks with 0 there).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "mha.hpp"

namespace mha {

struct MaskContext {
  const ForwardOptions* options;
  std::int64_t batch_index;  // b
  std::int64_t head_index;   // h
  std::int64_t num_heads;    // H
  std::int64_t lq, lk;
};

// scores[j - j0] += mask(b, h, i, j) for j in [j0, min(j1, Lk)).
inline void add_masks(float* scores, const MaskContext& m, std::int64_t i, std::int64_t j0,
                      std::int64_t j1) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const ForwardOptions& o = *m.options;
  const std::int64_t b = m.batch_index, lk = m.lk;
  j1 = std::min(j1, lk);
  if (j0 >= j1) return;
  float* s = scores - j0;  // s[j] for j in [j0, j1)
  if (o.attn.present()) {
    // [Lq, Lk] shared by every (b, h), or [B*H, Lq, Lk] indexed b*H + h.
    const std::int64_t row = o.attn_per_head ? ((b * m.num_heads + m.head_index) * m.lq + i) * lk : i * lk;
    if (o.attn.blocked) {
      for (std::int64_t j = j0; j < j1; ++j)
        if (o.attn.blocked[row + j]) s[j] += kNegInf;
    } else {
      for (std::int64_t j = j0; j < j1; ++j) s[j] += o.attn.additive[row + j];
    }
  }
  if (o.key_padding.present()) {
    const std::int64_t row = b * lk;  // [B, Lk]
    if (o.key_padding.blocked) {
      for (std::int64_t j = j0; j < j1; ++j)
        if (o.key_padding.blocked[row + j]) s[j] += kNegInf;
    } else {
      for (std::int64_t j = j0; j < j1; ++j) s[j] += o.key_padding.additive[row + j];
    }
  }
  if (o.is_causal)  // top-left aligned, as torch.tril(ones(Lq, Lk)): key j > i is blocked
    for (std::int64_t j = std::max(j0, i + 1); j < j1; ++j) s[j] += kNegInf;
  if (o.valid_lens != nullptr) {
    const std::int64_t len = o.valid_lens_per_query ? o.valid_lens[b * m.lq + i] : o.valid_lens[b];
    for (std::int64_t j = std::max(j0, len); j < j1; ++j) s[j] += kNegInf;
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
