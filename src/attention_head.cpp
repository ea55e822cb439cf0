#include "attention_head.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "buffers.hpp"
#include "kernels.hpp"

namespace mha {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::size_t kPanel = PackedWeight::kPanel;
constexpr std::size_t kRows = kGemmRows;

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

// The row of key j (j < S) in a narrow head's packed K and V: the extra keys
// first (bias_k, then the zero key), then keys 0 .. Lk-1. So the keys a block
// of queries computes, the extra ones and those before the first dead key,
// are one run of rows from 0: one call for the scores and one for the
// softmax and P . V.
std::size_t narrow_row(std::size_t j, std::size_t lk, std::size_t extra) { return j < lk ? extra + j : j - lk; }

// A row with every key blocked gets the policy's fill, for its Z and its
// weights. A NaN score leaves m at -inf too, but l NaN. With S == 0 there is
// nothing to attend to, and Z is PyTorch's empty sum, 0, under either policy.
bool fully_masked(std::size_t s, float m, float l) { return s > 0 && m == kNegInf && l == 0.0f; }
float masked_fill(const HeadOutput& out, std::size_t s) { return s > 0 && out.nan_for_fully_masked ? kNaN : 0.0f; }

// How a row's softmax ends, from its max m and its sum l of 2^(score - m):
// Z = O * inv (O the unnormalised sum of values) and weights 2^(s - m) *
// inv; or, when `filled`, `fill` for both. A sink's 2^(sink - m) joins l
// (inv 0 when it alone overflows: the sink took everything), and a row
// with no key to attend to gets 0s, the sink's column taking all of it,
// under either fully-masked policy.
struct RowEnd {
  float inv;
  bool filled;
  float fill;
};
RowEnd row_end(const HeadOutput& out, std::size_t s, float m, float l) {
  if (out.has_sink) {
    if (m == kNegInf && l == 0.0f) return {0.0f, true, 0.0f};
    return {1.0f / (l + std::exp2(out.sink - m)), false, 0.0f};
  }
  if (fully_masked(s, m, l) || s == 0) return {0.0f, true, masked_fill(out, s)};
  return {1.0f / l, false, 0.0f};
}

}  // namespace

static std::size_t source_keys(const HeadInput& in) {  // S
  return in.lk + (in.bias_k ? 1 : 0) + (in.zero_attn ? 1 : 0);
}

static bool is_narrow(std::size_t d) { return d <= kNarrowWidth; }

std::uint64_t packed_head_size(std::uint64_t s, std::uint64_t d) {
  if (is_narrow(std::size_t(d))) return 2 * s * d;
  return round_up64(s, kRows) * d + s * round_up64(d, kPanel);
}

void pack_head(const HeadInput& in, float* packed, std::size_t j0, std::size_t j1) {
  const std::size_t d = in.d, lk = in.lk, s = source_keys(in);
  if (is_narrow(d)) {  // K [S, d], then V [S, d], rows in narrow_row's order
    const std::size_t extra = s - lk, j_lk = std::min(std::max(j0, lk), j1);
    for (std::size_t j = j0; j < j_lk; ++j)
      for (std::size_t t = 0; t < d; ++t) {
        packed[(extra + j) * d + t] = in.k[j * in.k_stride + t];
        packed[(s + extra + j) * d + t] = in.v[j * in.v_stride + t];
      }
    for (std::size_t j = j_lk; j < j1; ++j) {  // bias_kv, then the zero key's 0s
      const float *kr = key_row(in, j), *vr = value_row(in, j);
      const std::size_t row = narrow_row(j, lk, extra);
      for (std::size_t t = 0; t < d; ++t) {
        packed[row * d + t] = kr ? kr[t] : 0.0f;
        packed[(s + row) * d + t] = vr ? vr[t] : 0.0f;
      }
    }
    return;
  }
  const std::size_t d_pad = round_up(d, kPanel);
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

// A narrow head (d <= kNarrowWidth): kNarrowQueries queries at a time, each
// in a lane, against every key they have not all blocked, in one tile
// [keys, queries]. One block holds the whole row of scores, so the softmax
// needs no rescaling and the weights are the tile's own 2^(s - m) / l.
static void attend_narrow_rows(const HeadInput& in, const float* packed, std::size_t row0, std::size_t row1,
                               const HeadRules& rules, const HeadOutput& out, HeadScratch& sc) {
  constexpr std::size_t Q = kNarrowQueries;
  const std::size_t d = in.d, lk = in.lk, s = source_keys(in), extra = s - lk;
  const float* k = packed;          // K [S, d]
  const float* v = packed + s * d;  // V [S, d]
  float* p = sc.tile.data();        // scores, then 2^(score - max): [keys, Q]
  alignas(16) float qt[kNarrowWidth * Q], o[kNarrowWidth * Q], m[Q], l[Q];
  const float fill = masked_fill(out, s);  // the kernel's, in rows row_end then overrules
  for (std::size_t i0 = row0; i0 < row1; i0 += Q) {
    const std::size_t rows = std::min(Q, row1 - i0);
    for (std::size_t c = 0; c < rows; ++c)  // Q^T
      for (std::size_t t = 0; t < d; ++t) qt[t * Q + c] = in.q[(i0 + c) * in.q_stride + t];
    for (std::size_t c = rows; c < Q; ++c)  // missing queries are 0, their lanes never read
      for (std::size_t t = 0; t < d; ++t) qt[t * Q + c] = 0.0f;
    // Keys [live, Lk) are blocked for every query here: weight 0, not computed.
    const std::int64_t dead = live_keys(rules, std::int64_t(i0), std::int64_t(i0 + rows)).end;
    const std::size_t live = std::min(lk, std::size_t(dead)), keys = extra + live;
    simd::narrow_scores(qt, d, k, d, keys, p);
    apply_score_rules(p + extra * Q, Q, rules, std::int64_t(i0), std::int64_t(i0 + rows), 0, std::int64_t(live));
    simd::narrow_softmax_values(p, keys, v, d, d, fill, m, l, o);  // o: Z^T, fill in fully masked rows

    for (std::size_t c = 0; c < rows; ++c) {
      const RowEnd e = row_end(out, s, m[c], l[c]);
      // The kernel divided by l; a sink's share of the sum is taken here.
      const float sink_share = out.has_sink ? l[c] * e.inv : 1.0f;
      float* z = out.z + (i0 + c) * out.z_stride;
      for (std::size_t t = 0; t < d; ++t) z[t] = e.filled ? e.fill : out.has_sink ? o[t * Q + c] * sink_share : o[t * Q + c];
      if (out.weights == nullptr) continue;
      float* w = out.weights + (i0 + c) * out.weights_stride;
      auto put = [&](std::size_t j, float weight) {
        if (out.weights_add) w[j] += out.weights_scale * weight;
        else w[j] = weight;
      };
      for (std::size_t j = 0; j < s; ++j) {
        const bool computed = j < live || j >= lk;
        put(j, e.filled ? e.fill : computed ? p[narrow_row(j, lk, extra) * Q + c] * e.inv : 0.0f);
      }
    }
  }
}

void fit_scratch(HeadScratch& sc, std::uint64_t s, std::uint64_t d, bool weights, Growth& grow) {
  if (is_narrow(std::size_t(d))) {
    grow(sc.tile, s * kNarrowQueries);
    return;
  }
  grow(sc.q_panels, kQueryBlock * d);
  grow(sc.tile, kKeyBlock * kQueryBlock);
  grow(sc.out, kQueryBlock * round_up64(d, kPanel));
  grow(sc.row_max, kQueryBlock);
  grow(sc.row_sum, kQueryBlock);
  grow(sc.rescale, kQueryBlock);
  if (weights) grow(sc.wide, kQueryBlock * s);
  grow(sc.scores, s * kInPlaceGroup);
}

// The keys query `q` may see: keys outside are blocked for it (weight 0,
// not computed).
static std::pair<std::size_t, std::size_t> live_range(const InPlaceQuery& q, std::size_t s) {
  const KeyRange live = live_keys(q.rules, std::int64_t(q.i), std::int64_t(q.i + 1));
  const std::size_t first = std::size_t(std::max<std::int64_t>(live.first, 0));
  return {first, std::max(first, std::min(s, std::size_t(std::max<std::int64_t>(live.end, 0))))};
}

// A query's weights row: p[j * stride] / l over [first, end), 0 elsewhere;
// or `fill` everywhere when its row was fully masked.
static void put_weights(const InPlaceQuery& q, const float* p, std::size_t stride, std::size_t first, std::size_t end,
                        std::size_t s, float inv, bool masked, float fill) {
  const HeadOutput& out = *q.out;
  if (out.weights == nullptr) return;
  float* w = out.weights + q.i * out.weights_stride;
  for (std::size_t j = 0; j < s; ++j) {
    const float weight = masked ? fill : j >= first && j < end ? p[j * stride] * inv : 0.0f;
    if (out.weights_add) w[j] += out.weights_scale * weight;
    else w[j] = weight;
  }
}

static void attend_one_in_place(const InPlaceQuery& q, HeadScratch& sc) {
  const HeadInput& in = *q.in;
  const std::size_t d = in.d, s = in.lk;  // no bias_kv or zero key (attends_in_place)
  float* p = sc.scores.data();  // the row's scores, then 2^(score - max)
  float* z = q.out->z + q.i * q.out->z_stride;
  const auto [first, end] = live_range(q, s);
  const std::size_t n = end - first;
  simd::dot_rows(in.q + q.i * in.q_stride, in.k + first * in.k_stride, in.k_stride, n, d, p + first);
  apply_score_rules(p + first, 1, q.rules, std::int64_t(q.i), std::int64_t(q.i + 1), std::int64_t(first),
                    std::int64_t(end));
  float m = kNegInf;
  for (std::size_t j = first; j < end; ++j)
    if (m < p[j]) m = p[j];  // a NaN is never taken
  const float l = n > 0 ? simd::exp_shifted_sum(p + first, n, softmax_shift(m)) : 0.0f;
  const RowEnd e = row_end(*q.out, s, m, l);
  if (e.filled) {
    std::fill(z, z + d, e.fill);
  } else {
    simd::weighted_rows(p + first, in.v + first * in.v_stride, in.v_stride, n, d, z);
    simd::scale(e.inv, z, d);
  }
  put_weights(q, p, 1, first, end, s, e.inv, e.filled, e.fill);
}

void attend_in_place(const InPlaceQuery* queries, std::size_t n, HeadScratch& sc) {
  if (n == 1) return attend_one_in_place(queries[0], sc);
  constexpr std::size_t G = kInPlaceGroup;
  const HeadInput& in = *queries[0].in;  // every query's keys and values are these
  const std::size_t d = in.d, s = in.lk;
  // The keys any of them may see; each query's rules block the rest of it.
  std::size_t first = s, end = 0;
  for (std::size_t c = 0; c < n; ++c) {
    const auto [f, e] = live_range(queries[c], s);
    if (f < e) first = std::min(first, f), end = std::max(end, e);
  }
  if (first >= end) first = end = 0;
  const std::size_t keys = end - first;
  // Missing queries repeat the first; their results go to scratch.
  const float* q[G];
  float* z[G];
  for (std::size_t c = 0; c < G; ++c) {
    const InPlaceQuery& qc = queries[c < n ? c : 0];
    q[c] = qc.in->q + qc.i * qc.in->q_stride;
    z[c] = c < n ? qc.out->z + qc.i * qc.out->z_stride : sc.out.data();
  }
  float* t = sc.scores.data();  // [keys][G]: scores, then 2^(score - max)
  // Two queries (a group of two heads, Qwen3's and Gemma 2's) by the
  // two-query kernels, in the same layout: half the arithmetic.
  if (n == 2) simd::dot_rows2(q, in.k + first * in.k_stride, in.k_stride, keys, d, t + first * G);
  else simd::dot_rows4(q, in.k + first * in.k_stride, in.k_stride, keys, d, t + first * G);
  for (std::size_t c = 0; c < n; ++c)
    apply_score_rules(t + first * G + c, G, queries[c].rules, std::int64_t(queries[c].i),
                      std::int64_t(queries[c].i + 1), std::int64_t(first), std::int64_t(end));
  alignas(16) float m[G], l[G], rescale[G];
  std::fill(m, m + G, kNegInf);
  std::fill(l, l + G, 0.0f);
  simd::softmax_columns(t + first * G, G, keys, G, m, l, rescale);
  if (n == 2) simd::weighted_rows2(t + first * G, in.v + first * in.v_stride, in.v_stride, keys, d, z);
  else simd::weighted_rows4(t + first * G, in.v + first * in.v_stride, in.v_stride, keys, d, z);
  for (std::size_t c = 0; c < n; ++c) {
    const RowEnd e = row_end(*queries[c].out, s, m[c], l[c]);
    if (e.filled) std::fill(z[c], z[c] + d, e.fill);
    else simd::scale(e.inv, z[c], d);
    put_weights(queries[c], t + c, G, first, end, s, e.inv, e.filled, e.fill);
  }
}

void attend_rows(const HeadInput& in, const float* packed, std::size_t row0, std::size_t row1,
                 const HeadRules& rules, const HeadOutput& out, HeadScratch& sc) {
  if (is_narrow(in.d)) return attend_narrow_rows(in, packed, row0, row1, rules, out, sc);
  const std::size_t d = in.d, lk = in.lk, s = source_keys(in), d_pad = round_up(d, kPanel);
  const float* k_groups = packed;
  const float* v_panels = packed + round_up(s, kRows) * d;

  const bool want_weights = out.weights != nullptr;
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
    const KeyRange live = live_keys(rules, std::int64_t(i0), std::int64_t(i0 + rows));
    const std::size_t first = std::size_t(live.first), dead = std::size_t(live.end);

    // Until a key block is computed O holds nothing: the first one writes it
    // (no rescale, no sum onto zeros). A row no block reaches is fully masked
    // or has S = 0, and then O is never read.
    bool first_block = true;
    for (std::size_t j0 = 0; j0 < s; j0 += kKeyBlock) {
      const std::size_t j1 = std::min(s, j0 + kKeyBlock), keys = j1 - j0;
      if (j1 <= lk && (j0 >= dead || j1 <= first)) continue;  // every row has all these keys blocked

      // tile[j, i] = k_j . q_i (log2(e)/sqrt(d) is in q: base-2 scores).
      simd::gemm(RowGroups{k_groups + (j0 / kRows) * d * kRows, d * kRows, kRows}, keys,
                 Panels{q_panels, d * kPanel}, d, cols, nullptr, false, tile, kQueryBlock);
      apply_score_rules(tile, kQueryBlock, rules, std::int64_t(i0), std::int64_t(i0 + rows), std::int64_t(j0),
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
      const RowEnd e = row_end(out, s, m[r], l[r]);
      if (e.filled) {
        std::fill(z, z + d, e.fill);
      } else {
        for (std::size_t t = 0; t < d; ++t) z[t] = o[r * d_pad + t] * e.inv;
      }
      if (!want_weights) continue;
      float* w = sc.wide.data() + r * s;  // raw scores -> 2^(s - m) / l
      if (e.filled) {
        std::fill(w, w + s, e.fill);
      } else if (s > 0) {
        simd::exp_shifted_sum(w, s, softmax_shift(m[r]));
        simd::scale(e.inv, w, s);
      }
      float* dst = out.weights + (i0 + r) * out.weights_stride;
      if (out.weights_add) simd::axpy(out.weights_scale, w, dst, s);
      else std::copy(w, w + s, dst);
    }
  }
}

}  // namespace mha
