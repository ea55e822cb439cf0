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
// Query rows per block. Every key and value block is read once per query
// block, so this is the reuse factor of K and V: with 8 rows, L = 16384 ran
// at half the speed of L = 2048 (K and V of a head, 8 MiB there, streamed
// from memory 2048 times); 64 rows cut that traffic 8-fold while the block's
// q rows, scores, P and O (16 KiB each at d = 64) stay in L2.
constexpr std::size_t kBlockRows = 64;
// Keys per block: one 64-key slice of K and V (16 KiB each at d = 64).
constexpr std::size_t kBlockKeys = 64;
static_assert(kBlockKeys % kPanel == 0, "key blocks start on panel boundaries");

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
  const std::size_t s_pad = round_up(s, kPanel);
  return s_pad * d + s_pad * round_up(d, kPanel);
}

void pack_head(const HeadInput& in, float* packed) {
  const std::size_t d = in.d, s = source_keys(in);
  const std::size_t d_pad = round_up(d, kPanel), s_pad = round_up(s, kPanel);
  float* k_panels = packed;               // K^T: [S/8][d][8]
  float* v_panels = packed + s_pad * d;   // V:   [d/8][S][8]
  std::fill(k_panels, k_panels + s_pad * d, 0.0f);
  std::fill(v_panels, v_panels + s_pad * d_pad, 0.0f);
  for (std::size_t j = 0; j < s; ++j) {
    float* k_col = k_panels + (j / kPanel) * d * kPanel + j % kPanel;
    float* v_row = v_panels + j * kPanel;
    const float* kr = key_row(in, j);
    const float* vr = value_row(in, j);
    if (kr)
      for (std::size_t t = 0; t < d; ++t) k_col[t * kPanel] = kr[t];
    if (vr)
      for (std::size_t t = 0; t < d; ++t) v_row[(t / kPanel) * s_pad * kPanel + t % kPanel] = vr[t];
  }
}

void attend_rows(const HeadInput& in, const float* packed, std::size_t row0, std::size_t row1,
                 const MaskContext& masks, const HeadOutput& out, HeadScratch& sc) {
  const std::size_t d = in.d, lk = in.lk, s = source_keys(in);
  const std::size_t d_pad = round_up(d, kPanel), s_pad = round_up(s, kPanel);
  const float* k_panels = packed;
  const float* v_panels = packed + s_pad * d;

  const bool want_weights = out.weights != nullptr;
  fit(sc.tile, kBlockRows * kBlockKeys);
  fit(sc.out, kBlockRows * d_pad);
  fit(sc.row_max, kBlockRows);
  fit(sc.row_sum, kBlockRows);
  if (want_weights) fit(sc.wide, kBlockRows * s);
  float* tile = sc.tile.data();
  float* o = sc.out.data();
  float* m = sc.row_max.data();
  float* l = sc.row_sum.data();

  for (std::size_t i0 = row0; i0 < row1; i0 += kBlockRows) {
    const std::size_t rows = std::min(kBlockRows, row1 - i0);
    std::fill(m, m + rows, kNegInf);
    std::fill(l, l + rows, 0.0f);
    std::fill(o, o + rows * d_pad, 0.0f);
    // Raw scores of blocks skipped below stay -inf: weight exp(-inf) = 0.
    if (want_weights) std::fill(sc.wide.begin(), sc.wide.begin() + rows * s, kNegInf);
    const std::size_t dead = std::size_t(first_dead_key(masks, std::int64_t(i0), std::int64_t(i0 + rows)));

    for (std::size_t j0 = 0; j0 < s; j0 += kBlockKeys) {
      const std::size_t j1 = std::min(s, j0 + kBlockKeys), keys = j1 - j0;
      if (j0 >= dead && j1 <= lk) continue;  // every row has all these keys blocked

      // tile[r, j] = q_r . k_j (the 1/sqrt(d) is in q). Whole panels: the
      // padding keys' scores (0) land in the tile past `keys` and are never
      // read, and the GEMM needs no partial-panel store.
      const Panels k_block{k_panels + (j0 / kPanel) * d * kPanel, d * kPanel};
      simd::gemm(in.q + i0 * in.q_stride, rows, in.q_stride, k_block, d, round_up(keys, kPanel), nullptr,
                 false, tile, kBlockKeys);
      for (std::size_t r = 0; r < rows; ++r) {
        float* t = tile + r * kBlockKeys;
        add_masks(t, masks, std::int64_t(i0 + r), std::int64_t(j0), std::int64_t(j1));
        if (want_weights) std::copy(t, t + keys, sc.wide.data() + r * s + j0);
        // Online softmax: fold this block into the row's running max and sum.
        // A NaN score makes m NaN, and with it l, O and the row's Z: PyTorch's NaN row.
        const float m_new = nan_max(m[r], simd::max(t, keys));
        if (m_new == kNegInf) {  // nothing allowed yet in this row: contributes nothing
          std::fill(t, t + keys, 0.0f);
          continue;
        }
        const float sum = simd::exp_shifted_sum(t, keys, m_new);
        if (m[r] == kNegInf) {  // the row's first live block: l and O are still 0
          l[r] = sum;
        } else {
          const float rescale = std::exp(m[r] - m_new);
          l[r] = l[r] * rescale + sum;
          if (rescale != 1.0f) simd::scale(rescale, o + r * d_pad, d_pad);
        }
        m[r] = m_new;
      }
      // O += P . V for this block of keys.
      const Panels v_block{v_panels + j0 * kPanel, s_pad * kPanel};
      simd::gemm(tile, rows, kBlockKeys, v_block, keys, d_pad, nullptr, true, o, d_pad);
    }

    for (std::size_t r = 0; r < rows; ++r) {
      float* z = out.z + (i0 + r) * out.z_stride;
      const float* o_r = o + r * d_pad;
      // Fully masked (every key blocked): the policy. With S == 0 there is
      // nothing to attend to and Z is PyTorch's empty sum, 0, either way.
      const bool fully_masked = s > 0 && m[r] == kNegInf;
      const float fill = fully_masked && out.nan_for_fully_masked ? kNaN : 0.0f;
      if (fully_masked || s == 0) {
        std::fill(z, z + d, fill);
      } else {
        const float inv = 1.0f / l[r];
        for (std::size_t t = 0; t < d; ++t) z[t] = o_r[t] * inv;
      }
      if (!want_weights) continue;
      float* w = sc.wide.data() + r * s;  // raw scores -> exp(s - m) / l
      if (fully_masked) {
        std::fill(w, w + s, fill);
      } else if (s > 0) {
        simd::exp_shifted_sum(w, s, m[r]);
        simd::scale(1.0f / l[r], w, s);
      }
      float* dst = out.weights + (i0 + r) * out.weights_stride;
      if (out.weights_add) simd::axpy(out.weights_scale, w, dst, s);
      else std::copy(w, w + s, dst);
    }
  }
}

}  // namespace mha
