// Small numeric primitives the attention routine is built from, each in two
// versions with one signature: `simd` (xsimd::batch<float>, whole batches then
// a scalar tail) and `scalar` (plain loops, the oracle the native kernel tests
// compare against, built into the test-only mha_reference library, never into
// the core). Plain pointers and counts: no SIMD type leaks out.
//
// Preconditions shared by every function: pointers valid for the counts given,
// counts may be 0, output ranges do not overlap inputs unless stated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "weight_formats.hpp"

namespace mha {

// log2(e). The softmax works in base 2: scores are s * log2(e) (folded into
// the query projection with 1/sqrt(d), and into additive masks), so that
// exp(s - m) is 2^(s*log2e - m*log2e), which costs fewer operations than e^x.
constexpr float kLog2e = 1.44269504088896341f;

// What a softmax subtracts from its scores: their max, or 0 while the max is
// -inf (every score so far blocked), so that 2^(-inf - shift) is 0 and not
// 2^NaN. The SIMD kernels apply the same rule per lane.
inline float softmax_shift(float max) { return max == -std::numeric_limits<float>::infinity() ? 0.0f : max; }

// A linear layer's weight W [N, K] (PyTorch's out_features x in_features),
// repacked once for the GEMM: panels of kPanel consecutive output columns,
// each panel stored k-major (K rows of kPanel values), the last zero-padded.
// Packing turns the inner loop into unit-stride loads of W^T. The values are
// in one of the WeightFormats (weight_formats.hpp), in the vector of their
// type; an int8 weight also has, per panel and per block of kQuantBlock k
// rows, kPanel scales (panel p's block b at scales[(p * blocks + b) * kPanel]).
struct PackedWeight {
  static constexpr std::size_t kPanel = 8;  // two f32x4 batches
  WeightFormat format = WeightFormat::f32;
  std::size_t n = 0;                        // N
  std::size_t k = 0;                        // K
  std::vector<float> data;                  // f32: ceil(N / kPanel) * K * kPanel
  std::vector<std::uint16_t> half;          // f16, bf16: the same layout, but see half_slot
  std::vector<std::int8_t> q8;              // int8: the same layout
  std::vector<float> scales;                // int8: ceil(N / kPanel) * ceil(K / kQuantBlock) * kPanel

  std::uint64_t bytes() const {
    return data.size() * sizeof(float) + half.size() * sizeof(std::uint16_t) + q8.size() + scales.size() * sizeof(float);
  }
  // Where column c of a k row of a panel is among its eight 16-bit values:
  // c0 c4 c1 c5 c2 c6 c3 c7, so that each 32-bit lane j of a row holds
  // columns j (low half) and j + 4 (high half), which two shifts (and a
  // mask) take apart into two float batches in place of two widening loads.
  static constexpr std::size_t half_slot(std::size_t c) { return c % 4 * 2 + c / 4; }
};

PackedWeight pack_weight(const float* w, std::size_t n, std::size_t k);
// The same for a weight whose rows lie apart: row i at rows[i], k floats
// (the fused [Wq; Wk; Wv] of three separately stored projections).
PackedWeight pack_weight_rows(const std::vector<const float*>& rows, std::size_t k);
// W [n, k] packed in a reduced format (weight_formats.hpp says how values
// are rounded; every value must be storable, see first_unstorable).
PackedWeight pack_reduced(const float* w, std::size_t n, std::size_t k, WeightFormat format);
// W [n, k] as the packed weight holds it (dequantized), row-major, into out.
void unpack_weight(const PackedWeight& w, float* out);
// Bytes pack_weight / pack_reduced take for an [n, k] weight (a double: no
// shape can overflow it).
double packed_bytes(double n, double k, WeightFormat format);

// The transposition pack_weight makes, into dst: W [n, k] with rows w_stride
// apart, as ceil(n / kPanel) panels of k rows of kPanel floats, the padding
// columns 0 (attention packs each block of queries, Q^T, so).
void pack_panels(const float* w, std::size_t n, std::size_t k, std::size_t w_stride, float* dst);

// The B operand of a GEMM, as column panels of kPanel floats, each k-major:
// element (kk, j) is at data[(j / kPanel) * panel_stride + kk * kPanel + j % kPanel].
// Packed weights: panel_stride = K * kPanel; a block of rows kk0.. of a panel
// starts kk0 * kPanel further. Columns past n in the last panel must be
// readable. (Every B is packed so: the micro-kernel then steps through B by a
// constant, which WebAssembly can fold into its addressing.)
struct Panels {
  const float* data;
  std::size_t panel_stride;
};

inline Panels panels_of(const PackedWeight& w) { return {w.data.data(), w.k * PackedWeight::kPanel}; }

// Rows of A the micro-kernel takes at once: kGemmRows x kPanel accumulators.
// Six with relaxed SIMD, whose multiply-add needs no register for the
// product: 12 accumulators, 2 weight batches and 1 broadcast fill V8's 15
// xmm registers. Five otherwise (10 + 2 + 1 + the product). See gemm.cpp.
#if defined(__wasm_relaxed_simd__)
inline constexpr std::size_t kGemmRows = 6;
#else
inline constexpr std::size_t kGemmRows = 5;
#endif

// The A operand of a GEMM, already in the micro-kernel's order: groups of
// kGemmRows rows, element (row r of group g, kk) at
// data[g * group_stride + kk * k_stride + r]. simd::gemm packs a plain A into
// this form block by block; attention builds it directly: its keys packed
// once per head (k_stride = kGemmRows), and its probabilities P^T, whose
// [keys, queries] rows already are this form (group_stride = kGemmRows,
// k_stride = the row length). The last group may have fewer rows; rows past
// m are never read.
struct RowGroups {
  const float* data;
  std::size_t group_stride;
  std::size_t k_stride;
};

// Narrow heads (d <= kNarrowWidth) are
// attended kNarrowQueries queries at a time, one query per f32x4 lane, over
// keys and values in plain rows: a GEMM's row groups, 8-wide panels and
// calls would cost more there than the few multiply-adds per score
// (bench/limits.md: faster up to d = 7, slower at 8). Layouts,
// lane-major: qt [d][kNarrowQueries] (Q^T of the queries), scores
// [keys][kNarrowQueries], o [d][kNarrowQueries].
inline constexpr std::size_t kNarrowWidth = 6;
inline constexpr std::size_t kNarrowQueries = 4;

namespace simd {
// A [rows, depth] (rows lda apart) into row groups at dst, as
// RowGroups{dst, depth * kGemmRows, kGemmRows}; the last group's missing rows
// are 0. dst holds ceil(rows / kGemmRows) * kGemmRows * depth floats. Why
// pack: the micro-kernel then walks A with one pointer and constant offsets;
// read in place, every k step computed a row address and a multiply per row
// (WebAssembly has no scaled addressing and LLVM did not strength-reduce them).
void pack_row_groups(const float* a, std::size_t lda, std::size_t rows, std::size_t depth, float* dst);
void axpy(float alpha, const float* x, float* y, std::size_t n);   // y += alpha * x
void scale(float alpha, float* x, std::size_t n);                  // x *= alpha
// x = 2^(x - shift); returns the sum. shift >= every x (softmax passes the
// row's max), so every exponent is <= 0; NaN in x stays NaN.
float exp_shifted_sum(float* x, std::size_t n, float shift);
// One block of keys of the online softmax, column by column: t is [keys,
// cols] (rows ldt apart), column c the scores of one query, cols a multiple
// of 4 (the f32x4 width). For each column, with m_new = max(m[c], t[0..keys)[c]) and
// shift = m_new, or 0 while m_new is -inf (nothing allowed yet):
//   t[j][c] = 2^(t[j][c] - shift)    (the block's unnormalised P^T; base 2, see kLog2e)
//   rescale[c] = 2^(m[c] - shift)    (what O and l were computed against)
//   l[c] = l[c] * rescale[c] + sum_j t[j][c];  m[c] = m_new
// NaN scores are not taken as a max but make l (and so the row) NaN; a
// column that is all -inf keeps m = -inf and l = 0.
void softmax_columns(float* t, std::size_t ldt, std::size_t keys, std::size_t cols, float* m, float* l,
                     float* rescale);
// C[m, n] = A[m, k] . B[k, n] + (accumulate ? C : bias), bias[n] or nullptr
// for zero. A rows are lda floats apart, C rows ldc apart.
void gemm(const float* a, std::size_t m, std::size_t lda, Panels b, std::size_t k, std::size_t n,
          const float* bias, bool accumulate, float* c, std::size_t ldc);
// The same over an A already in row groups.
void gemm(RowGroups a, std::size_t m, Panels b, std::size_t k, std::size_t n, const float* bias,
          bool accumulate, float* c, std::size_t ldc);
// y[m, N] = x[m, K] . W^T + bias: gemm over packed weights of any format,
// whose values are dequantized in registers as they are read.
void linear(const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w,
            const float* bias, float* y, std::size_t y_stride);
// The same for panels [p0, p1) only: columns from p0 * kPanel, which bias
// and y point at (one task's share of a projection).
void linear_panels(const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w, std::size_t p0,
                   std::size_t p1, const float* bias, float* y, std::size_t y_stride);
// scores[j][c] = sum_t qt[t][c] * key_j[t] for `keys` keys, key_j at
// k + j * k_stride; 1 <= d <= kNarrowWidth.
void narrow_scores(const float* qt, std::size_t d, const float* k, std::size_t k_stride, std::size_t keys,
                   float* scores);
// The whole softmax of a narrow block and its P . V in one pass over the
// keys: one block holds every key a query attends to, so there is no running
// max and nothing to rescale. For each column c (one query), with m[c] =
// max_j p[j][c] (NaN never taken; -inf if every score is) and shift = m[c],
// or 0 while m[c] is -inf:
//   p[j][c] = 2^(p[j][c] - shift)   (the unnormalised weights; base 2, see kLog2e)
//   l[c] = sum_j p[j][c]            (NaN if a score is NaN, 0 if all are -inf)
//   o[t][c] = sum_j p[j][c] * value_j[t] / l[c], value_j at v + j * v_stride,
//             or `fill` where l[c] = 0 (every key blocked, or no key)
// 1 <= d <= kNarrowWidth.
void narrow_softmax_values(float* p, std::size_t keys, const float* v, std::size_t v_stride, std::size_t d,
                           float fill, float* m, float* l, float* o);
// out[j] = q . k_j for `keys` rows k_j = k + j * k_stride, each d floats
// (decoding's scores, read from the cache's rows in place).
void dot_rows(const float* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d, float* out);
// z = sum_j p[j] * v_j over `keys` rows v_j = v + j * v_stride, each d floats.
void weighted_rows(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d, float* z);
// The same for four queries q[0..3] at once, each row read once for all:
// out[j * 4 + c] = q[c] . k_j, and z[c] = sum_j p[j * 4 + c] * v_j.
void dot_rows4(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out);
void weighted_rows4(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z);
// The same for two queries, in the same [keys][4] layout: dot_rows2 writes
// columns 0 and 1 (and 0 in columns 2 and 3), weighted_rows2 reads columns
// 0 and 1. Half the work of the four-query kernels for a group of two heads.
void dot_rows2(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out);
void weighted_rows2(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z);
// RMSNorm of one head's features (Qwen3's QK-norm, Hugging Face's
// Qwen3RMSNorm): x = x / sqrt(mean(x^2) + eps) * w, over x[0, d).
void rms_norm(float* x, std::size_t d, const float* w, float eps);
// Rotary embedding of x's first r features in the 'half' layout (Hugging
// Face's rotate_half): each pair (x[t], x[t + r/2]) turned by the angle
// whose cosine and sine are c[t] and s[t], t < r/2:
//   x[t] = x[t] c - x[t + r/2] s,   x[t + r/2] = x[t + r/2] c + x[t] s
void rotate_half(float* x, std::size_t r, const float* c, const float* s);
// The 'interleaved' layout (GPT-J, GGUF): pairs (x[2t], x[2t + 1]), the same
// turn. Plain loops, and no scalar twin: lanes would need a shuffle per
// pair, for a step that is a sliver of the layer's time.
void rotate_interleaved(float* x, std::size_t r, const float* c, const float* s);
}  // namespace simd

namespace scalar {
void axpy(float alpha, const float* x, float* y, std::size_t n);
void scale(float alpha, float* x, std::size_t n);
float exp_shifted_sum(float* x, std::size_t n, float shift);
void softmax_columns(float* t, std::size_t ldt, std::size_t keys, std::size_t cols, float* m, float* l,
                     float* rescale);
void gemm(const float* a, std::size_t m, std::size_t lda, Panels b, std::size_t k, std::size_t n,
          const float* bias, bool accumulate, float* c, std::size_t ldc);
void gemm(RowGroups a, std::size_t m, Panels b, std::size_t k, std::size_t n, const float* bias,
          bool accumulate, float* c, std::size_t ldc);
void narrow_scores(const float* qt, std::size_t d, const float* k, std::size_t k_stride, std::size_t keys,
                   float* scores);
void narrow_softmax_values(float* p, std::size_t keys, const float* v, std::size_t v_stride, std::size_t d,
                           float fill, float* m, float* l, float* o);
void dot_rows(const float* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d, float* out);
void weighted_rows(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d, float* z);
void dot_rows4(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out);
void weighted_rows4(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z);
void dot_rows2(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out);
void weighted_rows2(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z);
void rms_norm(float* x, std::size_t d, const float* w, float eps);
void rotate_half(float* x, std::size_t r, const float* c, const float* s);
// Same contract as simd::linear but reads W [N, K] unpacked.
void linear(const float* x, std::size_t m, std::size_t x_stride, const float* w, std::size_t n,
            std::size_t k, const float* bias, float* y, std::size_t y_stride);
}  // namespace scalar

}  // namespace mha
