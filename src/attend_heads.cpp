// Step 2 of a forward call (forward_steps.hpp): the attention of every
// head, as tasks over batches, heads and blocks of queries, and the score
// rules it applies.
#include <algorithm>

#include "buffers.hpp"
#include "forward_steps.hpp"
#include "parallel_loops.hpp"

namespace mha {
namespace {

// Query rows per attention task: one query block of attend_rows.
constexpr std::size_t kTaskQueries = kQueryBlock;
// Keys per packing task when one head's keys are packed by several threads.
constexpr std::size_t kTaskKeys = 256 * kGemmRows;

}  // namespace

// The score rules of this call, from its options (score_rules.hpp).
ScoreRules rules_of(const Call& c, const Config& config, const std::vector<float>& alibi, const ForwardOptions& o,
                    const KVCache::Storage* cache) {
  ScoreRules r;
  r.softcap = config.softcap > 0 ? float(config.softcap * double(kLog2e)) : 0.0f;
  r.alibi = alibi.empty() ? nullptr : alibi.data();
  r.causal = o.is_causal;
  r.window = config.sliding_window;
  r.q_pos = o.positions;
  r.k_pos = o.positions;  // self-attention: the keys are the queries' tokens
  r.k_pos_stride = std::int64_t(c.Lk);
  r.q_offset = o.bottom_right ? std::int64_t(c.Lk) - std::int64_t(c.Lq) : 0;
  r.mask_row = std::int64_t(c.Lk);
  if (cache != nullptr) {  // keys at their append indices first .. length-1; queries the last Lq
    r.causal = true;
    r.q_offset = cache->length - std::int64_t(c.Lq);
    r.k_offset = cache->first;
    r.q_pos = cache->implicit ? nullptr : o.positions;
    r.k_pos = cache->implicit ? nullptr : cache->positions.data() + cache->offset;
    r.k_pos_stride = cache->rows;
    r.mask_row = cache->length;
    r.mask_first = cache->first;
  }
  r.key_padding = o.key_padding;
  r.attn = o.attn;
  r.attn_layout = o.attn_per_head    ? ScoreRules::AttnLayout::per_head
                  : o.attn_per_batch ? ScoreRules::AttnLayout::per_batch
                                     : ScoreRules::AttnLayout::shared;
  r.valid_lens = o.valid_lens;
  r.valid_lens_per_query = o.valid_lens_per_query;
  r.num_heads = std::int64_t(c.H);
  r.lq = std::int64_t(c.Lq);
  r.lk = std::int64_t(c.Lk);
  return r;
}

// Step 2, attention of every head. Z_h overwrites q_h in place: a block of
// query rows reads its q rows for the last time before writing its Z rows,
// and no other block reads them. So concat [B*Lq, H*d] lives in q's buffer,
// rows q_stride apart: one buffer of B*Lq*H*d floats fewer at large L.
// Weights have `columns` per row (S, or with a cache every position since
// its reset), the keys attended being the last S of them; the ones before
// (dropped by a ring) get 0.
void attend(ThreadPool& pool, const Call& c, const Projected& x, const Config& config, const Parameters& p,
            const ScoreRules& rules, const ForwardOptions& o, const ForwardOutputs& out, std::size_t columns,
            Workspace& ws) {
  const std::size_t B = c.B, Lq = c.Lq, Lk = c.Lk, S = c.S, H = c.H, Hkv = c.Hkv, d = c.d;
  const std::size_t dropped = columns - S;
  float* concat = x.q;
  const std::size_t concat_stride = x.q_stride;

  // Query head h is columns h*d .. h*d+d-1 of q and concat (the [B, L, H, d]
  // view); its key/value head g = h / group, columns g*d .. of k and v.
  const std::size_t k_batch = x.k_batch ? x.k_batch : Lk * x.k_stride, v_batch = x.v_batch ? x.v_batch : Lk * x.v_stride;
  auto head_input = [&](std::size_t b, std::size_t h) {
    const std::size_t g = h / c.group;
    return HeadInput{x.q + b * Lq * x.q_stride + h * d, x.q_stride,
                     x.k + b * k_batch + g * (x.k_head ? x.k_head : d), x.k_stride,
                     x.v + b * v_batch + g * (x.v_head ? x.v_head : d), x.v_stride,
                     config.add_bias_kv ? p.bias_k() + h * d : nullptr,
                     config.add_bias_kv ? p.bias_v() + h * d : nullptr,
                     config.add_zero_attn, Lq, Lk, d};
  };
  auto head_output = [&](std::size_t b, std::size_t h) {
    HeadOutput ho{concat + b * Lq * concat_stride + h * d, concat_stride, nullptr, 0, false, 1.0f,
                  o.fully_masked_rows == FullyMaskedRows::nan, config.sinks, config.sinks ? p.sinks()[h] * kLog2e : 0.0f};
    if (o.need_weights == NeedWeights::per_head) {
      ho.weights = out.weights + (b * H + h) * Lq * columns + dropped;  // [B, H, Lq, columns]
      ho.weights_stride = columns;
    } else if (o.need_weights == NeedWeights::average) {
      ho.weights = out.weights + b * Lq * columns + dropped;  // [B, Lq, columns], summed over heads / H
      ho.weights_stride = columns;
      ho.weights_add = true;
      ho.weights_scale = 1.0f / float(H);
    }
    return ho;
  };

  const std::size_t per_head = std::size_t(c.per_head);
  if (o.need_weights == NeedWeights::average) std::fill(out.weights, out.weights + B * Lq * columns, 0.0f);
  if (o.need_weights == NeedWeights::per_head && dropped > 0)
    for (std::size_t r = 0; r < B * H * Lq; ++r) std::fill(out.weights + r * columns, out.weights + r * columns + dropped, 0.0f);
  const std::size_t row_tasks = ceil_div(Lq, kTaskQueries), pack_tasks = ceil_div(S, kTaskKeys);
  auto attend_task = [&](const HeadInput& hi, std::size_t b, std::size_t h, std::size_t row_task,
                         const float* packed, std::size_t worker) {
    const std::size_t i0 = row_task * kTaskQueries, i1 = std::min(Lq, i0 + kTaskQueries);
    attend_rows(hi, packed, i0, i1, HeadRules{&rules, std::int64_t(b), std::int64_t(h)}, head_output(b, h),
                ws.head[worker]);
  };
  // Key/value head g of batch b is packed once, for its whole group of
  // query heads (a query head of the group stands in for it: same k and v).
  auto pack = [&](std::size_t b, std::size_t g, std::size_t pack_task, float* packed) {
    pack_head(head_input(b, g * c.group), packed, pack_task * kTaskKeys, std::min(S, (pack_task + 1) * kTaskKeys));
  };
  // Averaged weights sum over heads into one row, so there a task takes
  // every head of its rows, in order: the sum is the same for any thread
  // count.
  const bool heads_per_task = o.need_weights != NeedWeights::average;
  const std::size_t groups = B * (heads_per_task ? H : 1);  // (batch, head) or batch

  if (c.in_place) {
    // A few queries (decoding): no packing. A task per (batch, key/value
    // head) attends its group's queries kInPlaceGroup at a time, so each
    // key and value row is read once for all of them; with averaged weights
    // a task per batch, every head in order.
    const std::size_t tasks = heads_per_task ? B * Hkv : B;
    run_tasks(pool, tasks, B * H * Lq * S * d, [&](std::size_t t, std::size_t worker) {
      const std::size_t b = heads_per_task ? t / Hkv : t;
      const std::size_t g0 = heads_per_task ? t % Hkv : 0, g1 = heads_per_task ? g0 + 1 : Hkv;
      for (std::size_t g = g0; g < g1; ++g) {
        HeadInput inputs[kInPlaceGroup];
        HeadOutput outputs[kInPlaceGroup];
        InPlaceQuery queries[kInPlaceGroup];
        std::size_t n = 0;
        for (std::size_t pair = 0; pair < c.group * Lq; ++pair) {  // (head, row) pairs, head-major
          const std::size_t h = g * c.group + pair / Lq;
          inputs[n] = head_input(b, h);
          outputs[n] = head_output(b, h);
          queries[n] = {&inputs[n], pair % Lq, HeadRules{&rules, std::int64_t(b), std::int64_t(h)}, &outputs[n]};
          if (++n == kInPlaceGroup || pair + 1 == c.group * Lq) {
            attend_in_place(queries, n, ws.head[worker]);
            n = 0;
          }
        }
      }
    });
    return;
  }
  if (c.one_head_at_a_time) {
    // Long sequences: one (batch, key/value head) at a time, its keys and
    // values packed and its group's query blocks attended by all the threads.
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t g = 0; g < Hkv; ++g) {
        run_tasks(pool, pack_tasks, S * d, [&](std::size_t t, std::size_t) { pack(b, g, t, ws.packed.data()); });
        run_tasks(pool, c.group * row_tasks, c.group * Lq * S * d, [&](std::size_t t, std::size_t worker) {
          const std::size_t h = g * c.group + t / row_tasks;
          attend_task(head_input(b, h), b, h, t % row_tasks, ws.packed.data(), worker);
        });
      }
    return;
  }
  // Every key/value head packed first, then one loop over (batch, query
  // head, query block): many tasks, so the threads finish together, and the
  // last query blocks first, which under a causal mask are the longest.
  // When a head's queries are one block and no other head shares its
  // keys, its one task packs them itself: no loop of its own for that, and
  // the keys are attended while in cache.
  const bool pack_in_task = row_tasks == 1 && c.group == 1;
  if (!pack_in_task)
    run_tasks(pool, B * Hkv * pack_tasks, B * Hkv * S * d, [&](std::size_t t, std::size_t) {
      const std::size_t bg = t / pack_tasks;
      pack(bg / Hkv, bg % Hkv, t % pack_tasks, ws.packed.data() + bg * per_head);
    });
  run_tasks(pool, groups * row_tasks, B * H * Lq * S * d, [&](std::size_t t, std::size_t worker) {
    const std::size_t rt = row_tasks - 1 - t / groups, g = t % groups;
    const std::size_t b = heads_per_task ? g / H : g;
    const std::size_t h0 = heads_per_task ? g % H : 0, h1 = heads_per_task ? h0 + 1 : H;
    for (std::size_t h = h0; h < h1; ++h) {
      const HeadInput hi = head_input(b, h);
      float* packed = ws.packed.data() + (b * Hkv + h / c.group) * per_head;
      if (pack_in_task) pack_head(hi, packed, 0, S);
      attend_task(hi, b, h, rt, packed, worker);
    }
  });
}

}  // namespace mha
