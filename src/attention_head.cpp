#include "attention_head.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.hpp"

namespace mha {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::size_t kPanel = PackedWeight::kPanel;
constexpr std::size_t kRows = kGemmRows;

void fit(std::vector<float>& buf, std::size_t n) {  // never empty: data() is never null
  if (buf.size() < std::max<std::size_t>(n, 1)) buf.resize(std::max<std::size_t>(n, 1));
}

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Key j of this head (j < S), or nullptr for the zero-attention key.
const float* key_row(const HeadInput& in, std::size_t j) {
  if (j < in.lk) return in.k + j * in.k_stride;
  if (in.bias_k != nullptr && j == in.lk) return in.bias_k;
  return nullptr;
}
const float* value_row(const HeadInput& in, std::size_t j) {
  if (j < in.lk) return in.v + j * in.v_stride;
  if (in.bias_v != nullptr && j == in.lk) return in.bias_v;
  return nullptr;
}

}  // namespace

static std::size_t source_keys(const HeadInput& in) {  // S
  return in.lk + (in.bias_k ? 1 : 0) + (in.zero_attn ? 1 : 0);
}

std::size_t packed_head_size(std::size_t s, std::size_t d) {
  return round_up(s, kRows) * d + s * round_up(d, kPanel);
}

void pack_head(const HeadInput& in, float* packed, std::size_t j0, std::size_t j1) {
  const std::size_t d = in.d, lk = in.lk, s = source_keys(in), d_pad = round_up(d, kPanel);
  float* k_groups = packed;                           // K: [S/5][d][5]
  float* v_panels = packed + round_up(s, kRows) * d;  // V: [d/8][S][8]
  // The range's first Lk keys by register transposes; the bias_k and zero
  // keys after them (at most two, and never read when absent) one by one.
  const std::size_t j_lk = std::min(std::max(j0, lk), j1);
  if (j_lk > j0) simd::pack_row_groups(in.k + j0 * in.k_stride, in.k_stride, j_lk - j0, d, k_groups + j0 * d);
  for (std::size_t j = j_lk; j < j1; ++j) {
    const float* kr = key_row(in, j);
    float* k_col = k_groups + (j / kRows) * d * kRows + j % kRows;
    for (std::size_t t = 0; t < d; ++t) k_col[t * kRows] = kr ? kr[t] : 0.0f;
  }
  // Fixed-length copies: a variable-length copy_n or fill of a few floats is
  // a call to memmove or memset in WebAssembly, two per key and panel.
  for (std::size_t j = j0; j < j1; ++j) {
    const float* vr = value_row(in, j);
    for (std::size_t t0 = 0; t0 < d_pad; t0 += kPanel) {
      float* v_row = v_panels + t0 * s + j * kPanel;  // panel t0 / 8, row j
      const std::size_t n = vr ? std::min(kPanel, d - std::min(d, t0)) : 0;  // the rest is padding
      if (n == kPanel) {
        std::copy_n(vr + t0, kPanel, v_row);
      } else {
        for (std::size_t c = 0; c < kPanel; ++c) v_row[c] = c < n ? vr[t0 + c] : 0.0f;
      }
    }
  }
}

void attend_rows(const HeadInput& in, const float* packed, std::size_t row0, std::size_t row1,
                 const MaskContext& masks, const HeadOutput& out, HeadScratch& sc) {
  const std::size_t d = in.d, lk = in.lk, s = source_keys(in), d_pad = round_up(d, kPanel);
  const float* k_groups = packed;
  const float* v_panels = packed + round_up(s, kRows) * d;

  const bool want_weights = out.weights != nullptr;
  fit(sc.q_panels, kQueryBlock * d);
  fit(sc.tile, kKeyBlock * kQueryBlock);
  fit(sc.out, kQueryBlock * d_pad);
  fit(sc.row_max, kQueryBlock);
  fit(sc.row_sum, kQueryBlock);
  fit(sc.rescale, kQueryBlock);
  if (want_weights) fit(sc.wide, kQueryBlock * s);
  float* q_panels = sc.q_panels.data();
  float* tile = sc.tile.data();  // S^T, then P^T: [keys, queries], rows kQueryBlock apart
  float* o = sc.out.data();      // O: [queries, d_pad]
  float* m = sc.row_max.data();
  float* l = sc.row_sum.data();

  for (std::size_t i0 = row0; i0 < row1; i0 += kQueryBlock) {
    const std::size_t rows = std::min(kQueryBlock, row1 - i0), cols = round_up(rows, kPanel);
    // Q^T of the block as B panels: query i is column i, d deep; padding
    // queries are 0 (their scores are computed and never read).
    pack_panels(in.q + i0 * in.q_stride, rows, d, in.q_stride, q_panels);
    std::fill(m, m + cols, kNegInf);
    std::fill(l, l + cols, 0.0f);
    // Raw scores of blocks skipped below stay -inf: weight 2^-inf = 0.
    if (want_weights) std::fill(sc.wide.begin(), sc.wide.begin() + rows * s, kNegInf);
    const std::size_t dead = std::size_t(first_dead_key(masks, std::int64_t(i0), std::int64_t(i0 + rows)));

    // Until a key block is computed O holds nothing: the first one writes it
    // (no rescale, no sum onto zeros). A row no block reaches is fully masked
    // or has S = 0, and then O is never read.
    bool first_block = true;
    for (std::size_t j0 = 0; j0 < s; j0 += kKeyBlock) {
      const std::size_t j1 = std::min(s, j0 + kKeyBlock), keys = j1 - j0;
      if (j0 >= dead && j1 <= lk) continue;  // every row has all these keys blocked

      // tile[j, i] = k_j . q_i (log2(e)/sqrt(d) is in q: base-2 scores).
      simd::gemm(RowGroups{k_groups + (j0 / kRows) * d * kRows, d * kRows, kRows}, keys,
                 Panels{q_panels, d * kPanel}, d, cols, nullptr, false, tile, kQueryBlock);
      add_masks(tile, kQueryBlock, masks, std::int64_t(i0), std::int64_t(i0 + rows), std::int64_t(j0),
                std::int64_t(j1));
      if (want_weights)
        for (std::size_t j = 0; j < keys; ++j)
          for (std::size_t i = 0; i < rows; ++i) sc.wide[i * s + j0 + j] = tile[j * kQueryBlock + i];
      // Online softmax: fold this block into each query's running max and
      // sum, leaving 2^(score - max) in the tile; O was summed against the
      // old max, so it is rescaled first.
      simd::softmax_columns(tile, kQueryBlock, keys, round_up(rows, 4), m, l, sc.rescale.data());
      if (!first_block)
        for (std::size_t i = 0; i < rows; ++i)
          if (sc.rescale[i] != 1.0f) simd::scale(sc.rescale[i], o + i * d_pad, d_pad);
      // O (+)= P . V for this block of keys; P's rows are the tile's columns.
      simd::gemm(RowGroups{tile, kRows, kQueryBlock}, rows, Panels{v_panels + j0 * kPanel, s * kPanel}, keys,
                 d_pad, nullptr, !first_block, o, d_pad);
      first_block = false;
    }

    for (std::size_t r = 0; r < rows; ++r) {
      float* z = out.z + (i0 + r) * out.z_stride;
      const float* o_r = o + r * d_pad;
      // Fully masked (every key blocked): the policy. A NaN score leaves m
      // at -inf too, but l NaN. With S == 0 there is nothing to attend to and
      // Z is PyTorch's empty sum, 0, either way.
      const bool fully_masked = s > 0 && m[r] == kNegInf && l[r] == 0.0f;
      const float fill = fully_masked && out.nan_for_fully_masked ? kNaN : 0.0f;
      if (fully_masked || s == 0) {
        std::fill(z, z + d, fill);
      } else {
        const float inv = 1.0f / l[r];
        for (std::size_t t = 0; t < d; ++t) z[t] = o_r[t] * inv;
      }
      if (!want_weights) continue;
      float* w = sc.wide.data() + r * s;  // raw scores -> 2^(s - m) / l
      if (fully_masked) {
        std::fill(w, w + s, fill);
      } else if (s > 0) {
        simd::exp_shifted_sum(w, s, m[r] == kNegInf ? 0.0f : m[r]);
        simd::scale(1.0f / l[r], w, s);
      }
      float* dst = out.weights + (i0 + r) * out.weights_stride;
      if (out.weights_add) simd::axpy(out.weights_scale, w, dst, s);
      else std::copy(w, w + s, dst);
    }
  }
}

}  // namespace mha
