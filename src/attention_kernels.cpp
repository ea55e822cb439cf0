// The attention's own kernels: the online softmax down columns of scores,
// narrow heads one query per lane, and decoding's scores and weighted sums
// over a cache's rows read in place.
#include <algorithm>

#include "simd_batch.hpp"

namespace mha {
using namespace simd_lanes;
namespace {

// Decoding reads a cache's rows straight from memory, and the CPU's
// prefetchers follow rows read one after another in address order, but not
// two or more rows read side by side, nor a block of rows read column chunk
// by column chunk (bench/limits.md, "Decoding's reads"). The one- and
// two-query score kernels therefore take one key at a time. Where a kernel
// needs several rows at once (four queries' scores: two keys, to reuse each
// query load; the weighted sums: blocks of keys) it first sweeps what it is
// about to read, in address order, one load per 64-byte line, and then finds
// it in L1 or on its way there. The loads are folded into a sink whose one
// lane lands in a volatile, so that none is dead code; an OR, so the fold
// adds no latency chain of note.
volatile float g_sweep_sink;

// Touches every line of [p, p + floats) without reading past its end.
batch sweep(const float* p, std::size_t floats, batch sink) {
  constexpr std::size_t kLine = 64 / sizeof(float);
  if (floats < kLanes) return sink;  // a row this short shares its lines with its neighbours
  for (std::size_t t = 0; t + kLanes <= floats; t += kLine) sink = sink | batch::load_unaligned(p + t);
  return sink | batch::load_unaligned(p + floats - kLanes);
}

void keep(batch sink) { g_sweep_sink = sink.get(0); }

// Rows at least this long are swept ahead by the four-query score kernel:
// shorter ones, two of them side by side, the prefetchers follow by
// themselves (and the sweep then only costs).
constexpr std::size_t kSweptRowFloats = 128;
// How far ahead of the row pair being scored the sweep runs.
constexpr std::size_t kSweepAheadFloats = 4096 / sizeof(float);

// Keys per block of the weighted sums: about 4 KB of value rows, 8 to 32
// of them. Each block is swept, then read pass by pass (a chunk of columns
// at a time); from memory, blocks of 32 rows of 128 floats took 1.6-1.7
// times as long as blocks of 8 (bench/limits.md, "Decoding's reads").
std::size_t value_block_keys(std::size_t d) {
  return std::clamp<std::size_t>(4096 / sizeof(float) / std::max<std::size_t>(d, 1), 8, 32);
}

// softmax_columns on NB batches of columns from c0: their running maxes and
// sums stay in registers down the whole block, and no value crosses lanes.
template <std::size_t NB>
void softmax_column_batches(float* t, std::size_t ldt, std::size_t keys, std::size_t c0, float* m, float* l,
                            float* rescale) {
  const batch zero(0.0f);
  const Exp2Constants k = exp2_constants();
  batch m_new[NB], shift[NB], sum[NB];
  for (std::size_t j = 0; j < NB; ++j) m_new[j] = batch::load_unaligned(m + c0 + j * kLanes);
  for (std::size_t r = 0; r < keys; ++r)
    for (std::size_t j = 0; j < NB; ++j) {
      const batch x = batch::load_unaligned(t + r * ldt + c0 + j * kLanes);
      m_new[j] = xsimd::select(m_new[j] < x, x, m_new[j]);  // a NaN x is never taken
    }
  for (std::size_t j = 0; j < NB; ++j) {
    shift[j] = softmax_shift(m_new[j]);
    sum[j] = zero;
  }
  for (std::size_t r = 0; r < keys; ++r)
    for (std::size_t j = 0; j < NB; ++j) {
      float* p = t + r * ldt + c0 + j * kLanes;
      const batch e = exp2_batch(batch::load_unaligned(p) - shift[j], k);
      e.store_unaligned(p);
      sum[j] += e;
    }
  for (std::size_t j = 0; j < NB; ++j) {
    const std::size_t c = c0 + j * kLanes;
    const batch alpha = exp2_batch(batch::load_unaligned(m + c) - shift[j], k);
    alpha.store_unaligned(rescale + c);
    madd(batch::load_unaligned(l + c), alpha, sum[j]).store_unaligned(l + c);
    m_new[j].store_unaligned(m + c);
  }
}

// narrow_scores and narrow_softmax_values for one head width D, so that the
// D query batches (or D accumulators) are named values the compiler keeps in
// registers: at most 6 + 2 live f32x4 values, besides the exponential's.
// The barrier after each multiply-add keeps LLVM from hoisting a key's D
// load-splats together (see keep_order).
template <std::size_t D>
void narrow_scores_of_width(const float* qt, const float* k, std::size_t k_stride, std::size_t keys,
                            float* scores) {
  batch q[D];
  for (std::size_t t = 0; t < D; ++t) q[t] = batch::load_unaligned(qt + t * kLanes);
  for (std::size_t j = 0; j < keys; ++j, k += k_stride, scores += kLanes) {
    batch s = q[0] * batch(k[0]);
    keep_order();
    for (std::size_t t = 1; t < D; ++t) {
      s = madd(q[t], batch(k[t]), s);
      keep_order();
    }
    s.store_unaligned(scores);
  }
}

template <std::size_t D>
void narrow_softmax_values_of_width(float* p, std::size_t keys, const float* v, std::size_t v_stride, float fill,
                                    float* m, float* l, float* o) {
  const batch neg_inf(-std::numeric_limits<float>::infinity()), zero(0.0f);
  batch max = neg_inf;
  for (std::size_t j = 0; j < keys; ++j) {
    const batch x = batch::load_unaligned(p + j * kLanes);
    max = xsimd::select(max < x, x, max);  // a NaN x is never taken
  }
  const batch shift = softmax_shift(max);
  // The exponentials and P . V in loops of their own: fused, the D
  // accumulators, the polynomial's constants and its temporaries outgrew
  // the registers, and ran slower (bench/limits.md).
  const Exp2Constants k = exp2_constants();
  batch sum = zero;
  for (std::size_t j = 0; j < keys; ++j) {
    const batch e = exp2_batch(batch::load_unaligned(p + j * kLanes) - shift, k);
    e.store_unaligned(p + j * kLanes);
    sum += e;
  }
  batch acc[D];
  for (std::size_t t = 0; t < D; ++t) acc[t] = zero;
  for (std::size_t j = 0; j < keys; ++j, v += v_stride) {
    const batch pj = batch::load_unaligned(p + j * kLanes);
    for (std::size_t t = 0; t < D; ++t) {
      acc[t] = madd(pj, batch(v[t]), acc[t]);
      keep_order();
    }
  }
  max.store_unaligned(m);
  sum.store_unaligned(l);
  const auto none = sum == zero;  // every key blocked (or none at all)
  const batch inv = batch(1.0f) / sum, fills(fill);
  for (std::size_t t = 0; t < D; ++t) xsimd::select(none, fills, acc[t] * inv).store_unaligned(o + t * kLanes);
}

static_assert(kNarrowQueries == kLanes, "a narrow block is one query per lane");
static_assert(kNarrowWidth == 6, "the switches below cover widths 1 to 6");

}  // namespace
namespace simd {

void softmax_columns(float* t, std::size_t ldt, std::size_t keys, std::size_t cols, float* m, float* l,
                     float* rescale) {
  std::size_t c0 = 0;
  for (; c0 + kPanel <= cols; c0 += kPanel) softmax_column_batches<kPanelBatches>(t, ldt, keys, c0, m, l, rescale);
  for (; c0 < cols; c0 += kLanes) softmax_column_batches<1>(t, ldt, keys, c0, m, l, rescale);
}

void narrow_scores(const float* qt, std::size_t d, const float* k, std::size_t k_stride, std::size_t keys,
                   float* scores) {
  switch (d) {
    case 1: return narrow_scores_of_width<1>(qt, k, k_stride, keys, scores);
    case 2: return narrow_scores_of_width<2>(qt, k, k_stride, keys, scores);
    case 3: return narrow_scores_of_width<3>(qt, k, k_stride, keys, scores);
    case 4: return narrow_scores_of_width<4>(qt, k, k_stride, keys, scores);
    case 5: return narrow_scores_of_width<5>(qt, k, k_stride, keys, scores);
    default: return narrow_scores_of_width<6>(qt, k, k_stride, keys, scores);
  }
}

void narrow_softmax_values(float* p, std::size_t keys, const float* v, std::size_t v_stride, std::size_t d,
                           float fill, float* m, float* l, float* o) {
  switch (d) {
    case 1: return narrow_softmax_values_of_width<1>(p, keys, v, v_stride, fill, m, l, o);
    case 2: return narrow_softmax_values_of_width<2>(p, keys, v, v_stride, fill, m, l, o);
    case 3: return narrow_softmax_values_of_width<3>(p, keys, v, v_stride, fill, m, l, o);
    case 4: return narrow_softmax_values_of_width<4>(p, keys, v, v_stride, fill, m, l, o);
    case 5: return narrow_softmax_values_of_width<5>(p, keys, v, v_stride, fill, m, l, o);
    default: return narrow_softmax_values_of_width<6>(p, keys, v, v_stride, fill, m, l, o);
  }
}

void dot_rows(const float* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d, float* out) {
  // One key at a time, its row read in address order (which the
  // prefetchers follow, where four rows side by side they did not), in four
  // phases of its features: four independent sums.
  constexpr std::size_t kPhases = 4, kStep = kPhases * kLanes;
  const std::size_t steps = d / kStep * kStep, whole = d / kLanes * kLanes;
  for (std::size_t j = 0; j < keys; ++j) {
    const float* row = k + j * k_stride;
    batch a[kPhases];
    for (std::size_t u = 0; u < kPhases; ++u) a[u] = batch(0.0f);
    for (std::size_t t = 0; t < steps; t += kStep)
      for (std::size_t u = 0; u < kPhases; ++u)
        a[u] = madd(batch::load_unaligned(q + t + u * kLanes), batch::load_unaligned(row + t + u * kLanes), a[u]);
    for (std::size_t t = steps; t < whole; t += kLanes)  // whole batches past the last full step
      a[0] = madd(batch::load_unaligned(q + t), batch::load_unaligned(row + t), a[0]);
    float sum = xsimd::reduce_add((a[0] + a[1]) + (a[2] + a[3]));
    for (std::size_t t = whole; t < d; ++t) sum += q[t] * row[t];
    out[j] = sum;
  }
}

void weighted_rows(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d, float* z) {
  // Keys in blocks whose value rows stay in L1 (swept in first) through
  // every pass over the columns; columns in chunks of up to kChunk batches,
  // whose sums stay in registers down the block and carry over to the next
  // through z.
  constexpr std::size_t kChunk = 8;
  const std::size_t block_keys = value_block_keys(d);
  const std::size_t batches = d / kLanes, whole = batches * kLanes;
  std::fill(z, z + d, 0.0f);
  batch sink(0.0f);
  for (std::size_t j0 = 0; j0 < keys; j0 += block_keys) {
    const std::size_t j1 = std::min(keys, j0 + block_keys);
    for (std::size_t j = j0; j < j1; ++j) sink = sweep(v + j * v_stride, d, sink);
    for (std::size_t b0 = 0; b0 < batches; b0 += kChunk) {
      const std::size_t n = std::min(kChunk, batches - b0), t0 = b0 * kLanes;
      batch acc[kChunk];
      for (std::size_t c = 0; c < n; ++c) acc[c] = batch::load_unaligned(z + t0 + c * kLanes);
      for (std::size_t j = j0; j < j1; ++j) {
        const batch pj(p[j]);
        const float* row = v + j * v_stride + t0;
        for (std::size_t c = 0; c < n; ++c) acc[c] = madd(pj, batch::load_unaligned(row + c * kLanes), acc[c]);
      }
      for (std::size_t c = 0; c < n; ++c) acc[c].store_unaligned(z + t0 + c * kLanes);
    }
    for (std::size_t t = whole; t < d; ++t) {  // scalar tail
      float sum = z[t];
      for (std::size_t j = j0; j < j1; ++j) sum += p[j] * v[j * v_stride + t];
      z[t] = sum;
    }
  }
  keep(sink);
}

void dot_rows4(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out) {
  static_assert(kLanes == 4, "one batch holds the four queries' scores of a key");
  const std::size_t whole = d / kLanes * kLanes;
  auto finish = [&](batch (&acc)[4], const float* row, float* dst) {  // the sums, plus the features past whole batches
    batch sums = xsimd::haddp(acc);
    if (whole < d) {
      alignas(16) float rest[4] = {};
      for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t t = whole; t < d; ++t) rest[c] += q[c][t] * row[t];
      sums += batch::load_aligned(rest);
    }
    sums.store_unaligned(dst);
  };
  // The pair of rows kSweepAheadFloats ahead (in whole pairs) is swept
  // while this one is scored; none for short rows.
  const std::size_t ahead = d >= kSweptRowFloats ? std::max<std::size_t>(1, kSweepAheadFloats / (2 * k_stride)) * 2 : 0;
  batch sink(0.0f);
  std::size_t j = 0;
  // Two keys at a time: eight independent sums, each query's batch loaded
  // once for both.
  for (; j + 2 <= keys; j += 2) {
    const float* r0 = k + j * k_stride;
    const float* r1 = r0 + k_stride;
    if (ahead > 0 && j + ahead + 2 <= keys)
      sink = sweep(r1 + ahead * k_stride, d, sweep(r0 + ahead * k_stride, d, sink));
    batch a0[4], a1[4];
    for (std::size_t c = 0; c < 4; ++c) a0[c] = a1[c] = batch(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch k0 = batch::load_unaligned(r0 + t), k1 = batch::load_unaligned(r1 + t);
      for (std::size_t c = 0; c < 4; ++c) {
        const batch qc = batch::load_unaligned(q[c] + t);
        a0[c] = madd(qc, k0, a0[c]);
        a1[c] = madd(qc, k1, a1[c]);
      }
    }
    finish(a0, r0, out + j * 4);
    finish(a1, r1, out + (j + 1) * 4);
  }
  for (; j < keys; ++j) {
    const float* row = k + j * k_stride;
    batch acc[4];
    for (std::size_t c = 0; c < 4; ++c) acc[c] = batch(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch kt = batch::load_unaligned(row + t);
      for (std::size_t c = 0; c < 4; ++c) acc[c] = madd(batch::load_unaligned(q[c] + t), kt, acc[c]);
    }
    finish(acc, row, out + j * 4);
  }
  keep(sink);
}

}  // namespace simd
namespace {

// z[c] = sum_j p[j * 4 + c] * v_j for the first Q columns of p's [keys][4]
// layout: 8 / Q batches of columns for all Q queries per pass (8 sums in
// registers, each value batch loaded once for the Q of them). The keys go in
// blocks whose value rows stay in L1 through every pass over the columns, so
// each row comes from memory once; the sums carry over from block to block
// through z.
template <std::size_t Q>
void weighted_rows_of(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                      float* const* z) {
  constexpr std::size_t kChunk = 8 / Q;
  const std::size_t block_keys = value_block_keys(d);
  const std::size_t whole = d / (kChunk * kLanes) * (kChunk * kLanes);
  for (std::size_t c = 0; c < Q; ++c) std::fill(z[c], z[c] + d, 0.0f);
  batch sink(0.0f);
  for (std::size_t j0 = 0; j0 < keys; j0 += block_keys) {
    const std::size_t j1 = std::min(keys, j0 + block_keys);
    for (std::size_t j = j0; j < j1; ++j) sink = sweep(v + j * v_stride, d, sink);
    for (std::size_t t0 = 0; t0 < whole; t0 += kChunk * kLanes) {
      batch acc[Q][kChunk];
      for (std::size_t c = 0; c < Q; ++c)
        for (std::size_t u = 0; u < kChunk; ++u) acc[c][u] = batch::load_unaligned(z[c] + t0 + u * kLanes);
      for (std::size_t j = j0; j < j1; ++j) {
        const float* row = v + j * v_stride + t0;
        batch vt[kChunk];
        for (std::size_t u = 0; u < kChunk; ++u) vt[u] = batch::load_unaligned(row + u * kLanes);
        for (std::size_t c = 0; c < Q; ++c) {
          const batch pj(p[j * 4 + c]);
          for (std::size_t u = 0; u < kChunk; ++u) acc[c][u] = madd(pj, vt[u], acc[c][u]);
          keep_order();
        }
      }
      for (std::size_t c = 0; c < Q; ++c)
        for (std::size_t u = 0; u < kChunk; ++u) acc[c][u].store_unaligned(z[c] + t0 + u * kLanes);
    }
    for (std::size_t t = whole; t < d; ++t)  // the columns past whole chunks
      for (std::size_t c = 0; c < Q; ++c) {
        float sum = z[c][t];
        for (std::size_t j = j0; j < j1; ++j) sum += p[j * 4 + c] * v[j * v_stride + t];
        z[c][t] = sum;
      }
  }
  keep(sink);
}

}  // namespace
namespace simd {

void weighted_rows4(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z) {
  weighted_rows_of<4>(p, v, v_stride, keys, d, z);
}

void weighted_rows2(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z) {
  weighted_rows_of<2>(p, v, v_stride, keys, d, z);
}

void dot_rows2(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out) {
  // One key at a time, its row read in address order (which the
  // prefetchers follow; two rows side by side they did not), in four
  // phases of its features: eight independent sums, two queries by four
  // phases, enough to keep both multiply-add pipes busy.
  constexpr std::size_t kPhases = 4, kStep = kPhases * kLanes;
  const std::size_t steps = d / kStep * kStep, whole = d / kLanes * kLanes;
  for (std::size_t j = 0; j < keys; ++j) {
    const float* row = k + j * k_stride;
    batch a0[kPhases], a1[kPhases];
    for (std::size_t u = 0; u < kPhases; ++u) a0[u] = a1[u] = batch(0.0f);
    for (std::size_t t = 0; t < steps; t += kStep)
      for (std::size_t u = 0; u < kPhases; ++u) {
        const std::size_t at = t + u * kLanes;
        const batch kt = batch::load_unaligned(row + at);
        a0[u] = madd(batch::load_unaligned(q[0] + at), kt, a0[u]);
        a1[u] = madd(batch::load_unaligned(q[1] + at), kt, a1[u]);
      }
    for (std::size_t t = steps; t < whole; t += kLanes) {  // whole batches past the last full step
      const batch kt = batch::load_unaligned(row + t);
      a0[0] = madd(batch::load_unaligned(q[0] + t), kt, a0[0]);
      a1[0] = madd(batch::load_unaligned(q[1] + t), kt, a1[0]);
    }
    // (key j: q0, q1, 0, 0), one horizontal add for both.
    const batch zero(0.0f);
    batch sums[4] = {(a0[0] + a0[1]) + (a0[2] + a0[3]), (a1[0] + a1[1]) + (a1[2] + a1[3]), zero, zero};
    float* o = out + j * 4;
    xsimd::haddp(sums).store_unaligned(o);
    for (std::size_t t = whole; t < d; ++t) o[0] += q[0][t] * row[t], o[1] += q[1][t] * row[t];
  }
}

}  // namespace simd
}  // namespace mha
