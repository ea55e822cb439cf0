// What happens to a head's scores between Q.K^T and the softmax, in the
// order shared/DECODER_ATTENTION.md fixes: softcap, ALiBi, then every mask
// (additive masks added, blocked keys -inf). Built once per call from the
// options at the boundary (attend_heads.cpp, rules_of); the per-head code sees
// only this. The scores are already scaled and in the softmax's base-2
// units (kLog2e), so every value added here is too.
//
// Positions: query i of batch b is at q_pos[b*Lq + i], or at i + q_offset
// when q_pos is null; key j at k_pos[b*k_pos_stride + j], or at j +
// k_offset. Only the first Lk keys have positions and masks: the bias_kv and
// zero-attention keys after them never have either (PyTorch pads its masks
// with 0 there). A mask's column for key j is mask_first + j, in rows of
// mask_row (with a cache: one column per position since the reset, of which
// the keys held are the last).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "buffers.hpp"
#include "kernels.hpp"
#include "mha.hpp"

namespace mha {

struct ScoreRules {
  float softcap = 0;              // c * log2(e): s becomes that * tanh(s / that); 0 = none
  const float* alibi = nullptr;   // [H] slopes * log2(e), or nullptr
  bool causal = false;            // key blocked when its position is after the query's
  std::int64_t window = 0;        // key blocked when q_pos - k_pos >= window; 0 = none
  const std::int32_t* q_pos = nullptr;
  std::int64_t q_offset = 0;
  const std::int32_t* k_pos = nullptr;
  std::int64_t k_pos_stride = 0;
  std::int64_t k_offset = 0;
  std::int64_t mask_row = 0, mask_first = 0;
  Mask key_padding;               // [B, Lk]
  Mask attn;                      // [Lq, Lk], [B*H, Lq, Lk] or [B, Lq, Lk]
  enum class AttnLayout { shared, per_head, per_batch } attn_layout = AttnLayout::shared;
  const std::int32_t* valid_lens = nullptr;  // [B], or [B, Lq] when valid_lens_per_query
  bool valid_lens_per_query = false;
  std::int64_t num_heads = 0, lq = 0, lk = 0;

  bool implicit_positions() const { return q_pos == nullptr && k_pos == nullptr; }
};

// The rules for one (batch, head).
struct HeadRules {
  const ScoreRules* rules;
  std::int64_t b, h;

  std::int64_t q_position(std::int64_t i) const {
    return rules->q_pos ? rules->q_pos[b * rules->lq + i] : i + rules->q_offset;
  }
  std::int64_t k_position(std::int64_t j) const {
    return rules->k_pos ? rules->k_pos[b * rules->k_pos_stride + j] : j + rules->k_offset;
  }
};

// An additive mask value in the scores' base-2 units. A finite value stays
// finite: Hugging Face pads with finfo(float32).min, which times log2(e)
// would overflow to -inf and make a row of padding fully masked, where
// PyTorch's scores are all that same finite value and its weights uniform.
//
// The constants come in as values: inside a WebAssembly loop, V8 rebuilds
// every vector constant from immediates wherever it is used (see
// simd_batch.hpp, Exp2Constants), and the loop below is vectorised.
struct MaskConstants {
  float log2e, max;
};
#if defined(__wasm__)
inline volatile float mask_constant_values[2] = {kLog2e, std::numeric_limits<float>::max()};
#else
inline constexpr float mask_constant_values[2] = {kLog2e, std::numeric_limits<float>::max()};
#endif
inline MaskConstants mask_constants() { return {mask_constant_values[0], mask_constant_values[1]}; }
inline float mask_in_base2(float add, MaskConstants k) {
  const float scaled = k.log2e * add;
  // |scaled| > max: it overflowed (add is finite) or add is infinite itself.
  return std::fabs(scaled) > k.max && std::fabs(add) <= k.max ? (add > 0 ? k.max : -k.max) : scaled;
}

// tile[j - j0][i - i0] gets the rules of (b, h, i, j) for keys j in
// [j0, min(j1, Lk)) and queries i in [i0, i1): the scores of a block of keys
// (rows ldt apart) against a block of queries (one column each). Masks are
// added, never assigned: a blocked +inf score becomes NaN, as PyTorch's
// additive masks make it.
inline void apply_score_rules(float* tile, std::size_t ldt, const HeadRules& hr, std::int64_t i0, std::int64_t i1,
                              std::int64_t j0, std::int64_t j1) {
  const ScoreRules& o = *hr.rules;
  const std::int64_t b = hr.b, lk = o.lk, cols = i1 - i0;
  j1 = std::min(j1, lk);
  // One pass over the keys per kind of rule present: a call with none
  // costs a few tests, not a few per key.
  auto row = [&](std::int64_t j) { return tile + std::size_t(j - j0) * ldt; };  // row(j)[i - i0]
  if (o.softcap > 0) {  // c * tanh(s / c), before any bias or mask (a blocked key stays -inf)
    const float inv = 1.0f / o.softcap;
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < cols; ++c) row(j)[c] = o.softcap * std::tanh(row(j)[c] * inv);
  }
  if (o.alibi) {  // m_h * (pos_k - pos_q)
    const float slope = o.alibi[hr.h];
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < cols; ++c)
        row(j)[c] += slope * float(hr.k_position(j) - hr.q_position(i0 + c));
  }
  if (o.attn.present()) {
    // [Lq, Lk] shared by every (b, h), [B*H, Lq, Lk] indexed b*H + h, or
    // [B, Lq, Lk]: a column of it.
    const std::int64_t first = o.attn_layout == ScoreRules::AttnLayout::per_head  ? (b * o.num_heads + hr.h) * o.lq
                               : o.attn_layout == ScoreRules::AttnLayout::per_batch ? b * o.lq
                                                                                    : 0;
    const MaskConstants k = mask_constants();
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < cols; ++c) {
        const std::int64_t at = (first + i0 + c) * o.mask_row + o.mask_first + j;
        if (o.attn.blocked) {
          if (o.attn.blocked[at]) row(j)[c] += kNegInf;
        } else {
          row(j)[c] += mask_in_base2(o.attn.additive[at], k);
        }
      }
  }
  if (o.key_padding.present()) {  // [B, Lk]: one value for the whole row of queries
    const MaskConstants k = mask_constants();
    for (std::int64_t j = j0; j < j1; ++j) {
      const std::int64_t at = b * o.mask_row + o.mask_first + j;
      const float add = o.key_padding.blocked ? (o.key_padding.blocked[at] ? kNegInf : 0.0f)
                                              : mask_in_base2(o.key_padding.additive[at], k);
      if (add != 0.0f)
        for (std::int64_t c = 0; c < cols; ++c) row(j)[c] += add;
    }
  }
  if (o.causal && o.implicit_positions()) {  // torch.tril shifted: key j blocked for i + q_offset < j + k_offset
    const std::int64_t shift = o.q_offset - o.k_offset;
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < std::min(cols, j - i0 - shift); ++c) row(j)[c] += kNegInf;
  } else if (o.causal) {
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < cols; ++c)
        if (hr.k_position(j) > hr.q_position(i0 + c)) row(j)[c] += kNegInf;
  }
  if (o.window > 0)  // W keys counting the query itself
    for (std::int64_t j = j0; j < j1; ++j)
      for (std::int64_t c = 0; c < cols; ++c)
        if (hr.q_position(i0 + c) - hr.k_position(j) >= o.window) row(j)[c] += kNegInf;
  if (o.valid_lens != nullptr)
    for (std::int64_t j = j0; j < j1; ++j) {
      if (o.valid_lens_per_query) {
        for (std::int64_t c = 0; c < cols; ++c)
          if (j >= o.valid_lens[b * o.lq + i0 + c]) row(j)[c] += kNegInf;
      } else if (j >= o.valid_lens[b]) {
        for (std::int64_t c = 0; c < cols; ++c) row(j)[c] += kNegInf;
      }
    }
}

// The keys that some query row in [i0, i1) may see, as far as positions
// tell (causal masking, the window, per-sequence valid lengths): keys
// outside [first, end) are blocked for every row of the block, and need
// not be computed at all. Only implicit positions, which grow with j, give
// bounds; explicit ones give the whole range.
struct KeyRange {
  std::int64_t first, end;
};
inline KeyRange live_keys(const HeadRules& hr, std::int64_t i0, std::int64_t i1) {
  const ScoreRules& o = *hr.rules;
  KeyRange r{0, o.lk};
  if (o.implicit_positions()) {
    // In key indices, row i is at i + shift: row i1-1 sees keys <= i1-1+shift;
    // row i0 none before i0+shift-W+1.
    const std::int64_t shift = o.q_offset - o.k_offset;
    if (o.causal) r.end = std::min(r.end, std::max<std::int64_t>(i1 + shift, 0));
    if (o.window > 0) r.first = std::clamp<std::int64_t>(i0 + shift - o.window + 1, 0, o.lk);
  }
  if (o.valid_lens != nullptr) {
    std::int64_t len = 0;
    if (o.valid_lens_per_query) {
      for (std::int64_t i = i0; i < i1; ++i) len = std::max<std::int64_t>(len, o.valid_lens[hr.b * o.lq + i]);
    } else {
      len = o.valid_lens[hr.b];
    }
    r.end = std::min(r.end, std::max<std::int64_t>(len, 0));
  }
  r.first = std::min(r.first, r.end);
  return r;
}

}  // namespace mha
