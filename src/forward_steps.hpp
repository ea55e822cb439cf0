// What the steps of a forward call share (attention.cpp runs them): the
// call's shape, the projected q, k and v, the scratch reused across calls,
// and step 2, which attend_heads.cpp holds: the attention of every head.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "attention_head.hpp"
#include "kv_cache.hpp"
#include "mha.hpp"
#include "parameters.hpp"
#include "score_rules.hpp"
#include "thread_pool.hpp"

namespace mha {

// Scratch reused across calls (see Growth).
struct Workspace {
  std::vector<float> q, k, v, packed;
  std::vector<HeadScratch> head;    // one per thread
  std::vector<float> angles;        // per thread: one row's rotary cos and sin
};

// The shape of one forward call, as every step sees it.
struct Call {
  std::size_t B, Lq, Lk, S, E, H, Hkv, d;
  std::size_t group;  // query heads per key/value head
  bool self;          // self-attention: the keys and values are the queries' tokens
  bool fused;         // self-attention through one [H*d + 2*Hkv*d, E] projection
  NeedWeights need_weights;
  bool in_place;           // heads attend keys and values where they are (attends_in_place)
  std::uint64_t per_head;  // floats of one key/value head's packed keys and values
  // Every (batch, key/value head) packed at once, or one at a time (long
  // sequences: memory grows with L, not L x heads). Averaged weights sum
  // over heads in one row, so they always take the first form.
  bool one_head_at_a_time;
};

// Step 1's result, the projections: q [B*Lq, H*d], k and v [B*Lk, Hkv*d], rows
// *_stride apart. Self-attention whose key and value widths are E is one
// GEMM: q, k, v side by side in each row.
struct Projected {
  float *q, *k, *v;
  std::size_t q_stride, k_stride, v_stride;
  // Rows of batch b start b * *_batch floats in; 0 means L * stride.
  std::size_t k_batch = 0, v_batch = 0;
  // Key/value head g starts g * *_head floats in; 0 means d (heads side by side in a row).
  std::size_t k_head = 0, v_head = 0;
};

// The score rules of this call, from its options (score_rules.hpp).
ScoreRules rules_of(const Call& c, const Config& config, const std::vector<float>& alibi, const ForwardOptions& o,
                    const KVCache::Storage* cache);

// Step 2, attention of every head. Z_h overwrites q_h in place: a block of
// query rows reads its q rows for the last time before writing its Z rows,
// and no other block reads them. So concat [B*Lq, H*d] lives in q's buffer,
// rows q_stride apart: one buffer of B*Lq*H*d floats fewer at large L.
// Weights have `columns` per row (S, or with a cache every position since
// its reset), the keys attended being the last S of them; the ones before
// (dropped by a ring) get 0.
void attend(ThreadPool& pool, const Call& c, const Projected& x, const Config& config, const Parameters& p,
            const ScoreRules& rules, const ForwardOptions& o, const ForwardOutputs& out, std::size_t columns,
            Workspace& ws);

}  // namespace mha
