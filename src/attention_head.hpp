// Scaled dot-product attention for one (batch, head), tiled with an online
// softmax: FlashAttention (Dao et al. 2022, algorithm 1; Milakov & Gimelshein
// 2018 for the running max and sum). Blocks of query rows meet blocks of keys;
// each row keeps a running max m, a running sum l and an unnormalised output
// O, rescaled by exp(m_old - m_new) when a block raises the max, and divided
// by l once at the end. Every exp is a 2^x of scores in base-2 units
// (kLog2e). The Lq x S score matrix never exists: memory is
// O(block x S) only when weights are asked for, O(block x block) otherwise.
//
// A block's scores are computed transposed, S^T = K . Q^T [keys, queries]:
// then each query's softmax runs down a column, lane-parallel with no
// horizontal reductions, and the probabilities P^T are already the row-group
// form the P . V GEMM reads, so they are never repacked (kernels.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "buffers.hpp"
#include "kernels.hpp"
#include "score_rules.hpp"

namespace mha {

// Queries per block: whole B panels (Q^T is the B of K . Q^T) and whole row
// groups (P is the A of P . V). Every key block is read once per query block,
// so this is also the reuse factor of K and V.
inline constexpr std::size_t kQueryBlock = 16 * kGemmRows;
static_assert(kQueryBlock % PackedWeight::kPanel == 0, "a query block is whole panels");
// Keys per block: whole row groups of K (the A of K . Q^T).
inline constexpr std::size_t kKeyBlock = 16 * kGemmRows;

struct HeadInput {
  // Rows of this head's slice, each `*_stride` floats apart.
  const float* q;  // [Lq, d], already scaled by log2(e)/sqrt(d) (kLog2e)
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
  // The head's sink logit (Config::sinks), in the scores' base-2 units: one
  // more softmax column, weighting no value.
  bool has_sink = false;
  float sink = 0.0f;
};

// Floats pack_head writes for a head with S keys of width d.
std::uint64_t packed_head_size(std::uint64_t s, std::uint64_t d);

// Keys [j0, j1) of this head's S into `packed`, the bias_kv and zero keys
// included. A head wider than kNarrowWidth holds them all as row groups
// (RowGroups{.., d * kGemmRows, kGemmRows}) followed by the values as panels
// (V [S, d], d padded to whole panels), padding zero; a narrow head holds
// K [S, d] then V [S, d], rows d apart, bias_kv and zero keys first, which
// the narrow kernels read four queries at a time (from the projections'
// rows, 3E apart, every key would be a cache line of its own). j0 is a
// multiple of kGemmRows, so that ranges packed by different threads never
// share a group.
void pack_head(const HeadInput& in, float* packed, std::size_t j0, std::size_t j1);

// Per-thread scratch, reused call after call.
struct HeadScratch {
  std::vector<float> q_panels, tile, wide, out, row_max, row_sum, rescale, scores;
};

// Grows (or counts, see Growth) one thread's scratch to what attend_rows needs for heads of S keys
// of width d, with or without weights. The layer fits every thread's before
// a parallel loop: which thread claims which task varies from call to call,
// so scratch grown inside the tasks could still be growing many calls later.
void fit_scratch(HeadScratch& scratch, std::uint64_t s, std::uint64_t d, bool weights, Growth& grow);

// Whether attend_in_place serves a call of lq queries (per head) of width
// d: a few queries, as decoding's one token a step, against keys with no
// bias_kv or zero key. Packing every key and value would then cost more
// than the attention itself, and a block of queries would be mostly padding.
inline constexpr std::size_t kInPlaceQueries = 4;
inline bool attends_in_place(std::size_t lq, std::size_t d, bool extra_keys) {
  return lq <= kInPlaceQueries && d > kNarrowWidth && !extra_keys;
}

// One query of attend_in_place: row i of a head, its rules and output.
struct InPlaceQuery {
  const HeadInput* in;
  std::size_t i;
  HeadRules rules;
  const HeadOutput* out;
};
// Queries attend_in_place takes at once.
inline constexpr std::size_t kInPlaceGroup = 4;

// Up to kInPlaceGroup queries whose heads read the same keys and values (a
// key/value head's group, or one head's few rows), attended with the keys
// and values read where they are (a cache's rows): each key and value row
// is read once for all of them. Each query gets its row of scores, the
// rules, one softmax over the row, then the weighted sum of the values.
void attend_in_place(const InPlaceQuery* queries, std::size_t n, HeadScratch& scratch);

// Attention of query rows [i0, i1) over the packed keys and values, with
// scratch fitted for this head (fit_scratch).
void attend_rows(const HeadInput& in, const float* packed, std::size_t i0, std::size_t i1,
                 const HeadRules& rules, const HeadOutput& out, HeadScratch& scratch);

}  // namespace mha
