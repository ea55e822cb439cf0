// The forward pass of nn.MultiheadAttention, composed from the primitives in
// kernels.hpp. No intrinsic appears here.
//
//   q = query . Wq^T + bq        [B, Lq, E]
//   k = key   . Wk^T + bk        [B, Lk, E]    (+ bias_k row, + zero row: S keys)
//   v = value . Wv^T + bv        [B, Lk, E]
//   per head h (columns h*d .. h*d+d-1 of q, k, v):
//     P_h = softmax(q_h k_h^T / sqrt(d) + mask)    [B, Lq, S]
//     Z_h = P_h v_h                                 [B, Lq, d]  -> concat columns h*d ..
//   output = concat . Wo^T + bo  [B, Lq, E]
#include <algorithm>
#include <cmath>
#include <limits>

#include "attention_head.hpp"
#include "buffers.hpp"
#include "checks.hpp"
#include "kernels.hpp"
#include "mha.hpp"
#include "parameters.hpp"
#include "thread_pool.hpp"

namespace mha {
namespace {

// Scratch reused across calls (see Growth).
struct Workspace {
  std::vector<float> q, k, v, packed;
  std::vector<HeadScratch> head;  // one per thread
};

// Rows of a GEMM per task: whole micro-kernel row groups, enough work to be
// worth a hand-off.
constexpr std::size_t kTaskRows = 8 * kGemmRows;
// Query rows per attention task: one query block of attend_rows.
constexpr std::size_t kTaskQueries = kQueryBlock;
// Keys per packing task when one head's keys are packed by several threads.
constexpr std::size_t kTaskKeys = 256 * kGemmRows;
// Tasks per thread a parallel loop aims for: tasks are claimed as threads
// come free, so with several each the loop ends nearly together on every
// thread even when one of them started late or was descheduled (on 2 vCPUs,
// 13 tasks for 2 threads left one idle for a twelfth of the loop).
constexpr std::size_t kTasksPerThread = 8;
// Packed keys and values of every head at once up to this size; beyond it,
// one head at a time, so that memory grows with L and not with L x heads.
constexpr std::size_t kAllHeadsBytes = std::size_t(32) << 20;

// Below this many multiply-adds a parallel loop costs more (waking the
// workers, ~10 us in a browser or Node) than it saves.
constexpr std::size_t kParallelWork = 1 << 16;

// pool.run, or a plain loop on the caller when the work is small.
void run_tasks(ThreadPool& pool, std::size_t tasks, std::size_t work, const ThreadPool::Task& fn) {
  if (work < kParallelWork) {
    for (std::size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  pool.run(tasks, fn);
}

// y = x . W^T + bias spread over the pool in tasks of (block of rows, range
// of column panels): rows alone when there are many, columns too when there
// are few (a decoding step has one row). Each element is computed by one
// thread with the same operations in the same order, whatever the split.
void parallel_linear(ThreadPool& pool, const float* x, std::size_t m, std::size_t x_stride,
                     const PackedWeight& w, const float* bias, float* y, std::size_t y_stride) {
  constexpr std::size_t P = PackedWeight::kPanel;
  const std::size_t threads = pool.size();
  if (threads == 1 || m * w.n * w.k < kParallelWork) {
    simd::linear(x, m, x_stride, w, bias, y, y_stride);
    return;
  }
  const Panels all = panels_of(w);
  const std::size_t panels = ceil_div(w.n, P), row_blocks = ceil_div(m, kTaskRows);
  const std::size_t col_parts = std::min(panels, ceil_div(kTasksPerThread * threads, row_blocks));
  const std::size_t per_part = ceil_div(panels, col_parts), parts = ceil_div(panels, per_part);
  pool.run(row_blocks * parts, [&](std::size_t t, std::size_t) {
    const std::size_t r0 = (t / parts) * kTaskRows, rows = std::min(kTaskRows, m - r0);
    const std::size_t p0 = (t % parts) * per_part, p1 = std::min(panels, p0 + per_part);
    const std::size_t col0 = p0 * P, cols = std::min(w.n, p1 * P) - col0;
    simd::gemm(x + r0 * x_stride, rows, x_stride, Panels{all.data + p0 * all.panel_stride, all.panel_stride}, w.k,
               cols, bias ? bias + col0 : nullptr, false, y + r0 * y_stride + col0, y_stride);
  });
}

}  // namespace

void set_num_threads(int threads) { thread_pool().resize(std::size_t(std::max(threads, 1))); }
int num_threads() { return int(thread_pool().size()); }
int max_threads() { return int(ThreadPool::max_threads()); }

// The shape of one forward call, as every step below sees it.
struct Call {
  std::size_t B, Lq, Lk, S, E, H, d;
  bool fused;  // self-attention through the one [3E, E] projection
  NeedWeights need_weights;
  std::uint64_t per_head;  // floats of one head's packed keys and values
  // Every (batch, head) packed at once, or one at a time (long sequences:
  // memory grows with L, not L x heads). Averaged weights sum over heads in
  // one row, so they always take the first form.
  bool one_head_at_a_time;
};

struct MultiheadAttention::Impl {
  Impl(const Config& c, std::uint64_t seed) : config(c), params(c, seed) {}
  Config config;
  Parameters params;
  Workspace ws;

  Call plan(std::int64_t batch, std::int64_t query_len, std::int64_t key_len, bool self_attention,
            NeedWeights need_weights) const;
  // Grows (or counts) every buffer a call of this shape needs: the
  // workspace, each thread's head scratch, and the packed weights.
  void fit(const Call& call, Growth& grow);
};

Call MultiheadAttention::Impl::plan(std::int64_t batch, std::int64_t query_len, std::int64_t key_len,
                                    bool self_attention, NeedWeights need_weights) const {
  const Config& c = config;
  Call call{};
  call.B = std::size_t(batch);
  call.Lq = std::size_t(query_len);
  call.Lk = std::size_t(key_len);
  call.S = std::size_t(mha::source_len(c, key_len));
  call.E = std::size_t(c.embed_dim);
  call.H = std::size_t(c.num_heads);
  call.d = call.E / call.H;
  call.fused = self_attention && params.fuses_qkv();
  call.need_weights = need_weights;
  call.per_head = packed_head_size(call.S, call.d);
  const std::uint64_t all_heads = std::uint64_t(call.B) * call.H * call.per_head;
  call.one_head_at_a_time = need_weights != NeedWeights::average && all_heads * sizeof(float) > kAllHeadsBytes;
  return call;
}

void MultiheadAttention::Impl::fit(const Call& c, Growth& grow) {
  const std::uint64_t B = c.B, Lq = c.Lq, Lk = c.Lk, E = c.E;
  grow.add_bytes(params.prepare_bytes(c.fused));
  if (c.fused) {
    grow(ws.q, B * Lq * 3 * E);  // [B*L, 3E]: q | k | v
  } else {
    grow(ws.q, B * Lq * E);
    grow(ws.k, B * Lk * E);
    grow(ws.v, B * Lk * E);
  }
  grow(ws.packed, c.one_head_at_a_time ? c.per_head : B * c.H * c.per_head);
  // One scratch per thread; a count for threads without one yet counts
  // what a new one would take.
  const std::size_t threads = thread_pool().size();
  const bool weights = c.need_weights != NeedWeights::none;
  if (grow.applies() && ws.head.size() < threads) ws.head.resize(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    if (t < ws.head.size()) {
      fit_scratch(ws.head[t], c.S, c.d, weights, grow);
    } else {
      HeadScratch fresh;
      grow.add_bytes(sizeof fresh);
      fit_scratch(fresh, c.S, c.d, weights, grow);
    }
  }
}

namespace {

// Step 1, the projections: q, k and v [B*L, E] with rows *_stride apart.
// q comes out already scaled by log2(e)/sqrt(d) (kLog2e, Parameters::prepare).
// Self-attention with in_proj_weight is one [B*L, E] x [E, 3E] GEMM: q, k,
// v interleaved per row.
struct Projected {
  const float *q, *k, *v;
  std::size_t q_stride, k_stride, v_stride;
};

Projected project(ThreadPool& pool, const Call& c, const ForwardInput& in, const Config& config, Parameters& p,
                  Workspace& ws) {
  const std::size_t E = c.E;
  if (c.fused) {
    parallel_linear(pool, in.query, c.B * c.Lq, E, p.packed_qkv(), p.b_qkv(), ws.q.data(), 3 * E);
    const float* q = ws.q.data();
    return {q, q + E, q + 2 * E, 3 * E, 3 * E, 3 * E};
  }
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = std::size_t(config.kdim), vdim = in.value ? std::size_t(config.vdim) : kdim;
  parallel_linear(pool, in.query, c.B * c.Lq, E, p.packed_q(), p.b_q(), ws.q.data(), E);
  parallel_linear(pool, key, c.B * c.Lk, kdim, p.packed_k(), p.b_k(), ws.k.data(), E);
  parallel_linear(pool, value, c.B * c.Lk, vdim, p.packed_v(), p.b_v(), ws.v.data(), E);
  return {ws.q.data(), ws.k.data(), ws.v.data(), E, E, E};
}

// Step 2, attention of every head. Z_h overwrites q_h in place: a block of
// query rows reads its q rows for the last time before writing its Z rows,
// and no other block reads them. So concat [B*Lq, E] lives in q's buffer,
// rows q_stride apart: one buffer of B*Lq*E floats fewer at large L.
void attend(ThreadPool& pool, const Call& c, const Projected& x, const Config& config, const Parameters& p,
            const ForwardOptions& o, const ForwardOutputs& out, Workspace& ws) {
  const std::size_t B = c.B, Lq = c.Lq, Lk = c.Lk, S = c.S, H = c.H, d = c.d;
  float* concat = const_cast<float*>(x.q);
  const std::size_t concat_stride = x.q_stride;

  // Head h is columns h*d .. h*d+d-1 of q, k, v and concat (the [B, L, H, d] view).
  auto head_input = [&](std::size_t b, std::size_t h) {
    return HeadInput{x.q + b * Lq * x.q_stride + h * d, x.q_stride,
                     x.k + b * Lk * x.k_stride + h * d, x.k_stride,
                     x.v + b * Lk * x.v_stride + h * d, x.v_stride,
                     config.add_bias_kv ? p.bias_k() + h * d : nullptr,
                     config.add_bias_kv ? p.bias_v() + h * d : nullptr,
                     config.add_zero_attn, Lq, Lk, d};
  };
  auto head_output = [&](std::size_t b, std::size_t h) {
    HeadOutput ho{concat + b * Lq * concat_stride + h * d, concat_stride, nullptr, 0, false, 1.0f,
                  o.fully_masked_rows == FullyMaskedRows::nan};
    if (o.need_weights == NeedWeights::per_head) {
      ho.weights = out.weights + (b * H + h) * Lq * S;  // [B, H, Lq, S]
      ho.weights_stride = S;
    } else if (o.need_weights == NeedWeights::average) {
      ho.weights = out.weights + b * Lq * S;  // [B, Lq, S], summed over heads / H
      ho.weights_stride = S;
      ho.weights_add = true;
      ho.weights_scale = 1.0f / float(H);
    }
    return ho;
  };
  auto masks_of = [&](std::size_t b, std::size_t h) {
    return MaskContext{&o, std::int64_t(b), std::int64_t(h), std::int64_t(H), std::int64_t(Lq),
                       std::int64_t(Lk)};
  };

  const std::size_t per_head = std::size_t(c.per_head);
  if (o.need_weights == NeedWeights::average) std::fill(out.weights, out.weights + B * Lq * S, 0.0f);
  const std::size_t row_tasks = ceil_div(Lq, kTaskQueries), pack_tasks = ceil_div(S, kTaskKeys);
  auto attend_task = [&](const HeadInput& hi, std::size_t b, std::size_t h, std::size_t row_task,
                         const float* packed, std::size_t worker) {
    const std::size_t i0 = row_task * kTaskQueries, i1 = std::min(Lq, i0 + kTaskQueries);
    attend_rows(hi, packed, i0, i1, masks_of(b, h), head_output(b, h), ws.head[worker]);
  };
  auto pack = [&](std::size_t b, std::size_t h, std::size_t pack_task, float* packed) {
    pack_head(head_input(b, h), packed, pack_task * kTaskKeys, std::min(S, (pack_task + 1) * kTaskKeys));
  };

  if (c.one_head_at_a_time) {
    // Long sequences: one (batch, head) at a time, its keys and values
    // packed and its query blocks attended by all the threads.
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h) {
        run_tasks(pool, pack_tasks, S * d, [&](std::size_t t, std::size_t) { pack(b, h, t, ws.packed.data()); });
        run_tasks(pool, row_tasks, Lq * S * d, [&](std::size_t t, std::size_t worker) {
          attend_task(head_input(b, h), b, h, t, ws.packed.data(), worker);
        });
      }
    return;
  }
  // Every head packed first, then one loop over (batch, head, query
  // block): many tasks, so the threads finish together, and the last query
  // blocks first, which under a causal mask are the longest. Averaged
  // weights sum over heads into one row, so there a task takes every head
  // of its rows, in order: the sum is the same for any thread count. When a
  // head's queries are one block, its one task packs its keys itself: no
  // loop of its own for that, and the keys are attended while in cache.
  const bool pack_in_task = row_tasks == 1;
  if (!pack_in_task)
    run_tasks(pool, B * H * pack_tasks, B * H * S * d, [&](std::size_t t, std::size_t) {
      const std::size_t bh = t / pack_tasks;
      pack(bh / H, bh % H, t % pack_tasks, ws.packed.data() + bh * per_head);
    });
  const bool heads_per_task = o.need_weights != NeedWeights::average;
  const std::size_t groups = B * (heads_per_task ? H : 1);  // (batch, head) or batch
  run_tasks(pool, groups * row_tasks, B * H * Lq * S * d, [&](std::size_t t, std::size_t worker) {
    const std::size_t rt = row_tasks - 1 - t / groups, g = t % groups;
    const std::size_t b = heads_per_task ? g / H : g;
    const std::size_t h0 = heads_per_task ? g % H : 0, h1 = heads_per_task ? h0 + 1 : H;
    for (std::size_t h = h0; h < h1; ++h) {
      const HeadInput hi = head_input(b, h);
      float* packed = ws.packed.data() + (b * H + h) * per_head;
      if (pack_in_task) pack_head(hi, packed, 0, S);
      attend_task(hi, b, h, rt, packed, worker);
    }
  });
}

// Step 4, the copies out: concat [B, Lq, E] and the heads [B, Lq, H, d] ->
// [B, H, Lq, d], both from concat's rows in q's buffer.
void copy_out(const Call& c, const float* concat, std::size_t concat_stride, const ForwardOutputs& out) {
  const std::size_t B = c.B, Lq = c.Lq, E = c.E, H = c.H, d = c.d;
  if (out.concat)
    for (std::size_t r = 0; r < B * Lq; ++r)
      std::copy(concat + r * concat_stride, concat + r * concat_stride + E, out.concat + r * E);
  if (out.heads)
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t i = 0; i < Lq; ++i) {
          const float* src = concat + (b * Lq + i) * concat_stride + h * d;
          std::copy(src, src + d, out.heads + ((b * H + h) * Lq + i) * d);
        }
}

}  // namespace

MultiheadAttention::MultiheadAttention(const Config& config, std::uint64_t seed)
    : impl_(std::make_unique<Impl>(checked_config(config), seed)) {}
MultiheadAttention::~MultiheadAttention() = default;
MultiheadAttention::MultiheadAttention(MultiheadAttention&&) noexcept = default;
MultiheadAttention& MultiheadAttention::operator=(MultiheadAttention&&) noexcept = default;

const Config& MultiheadAttention::config() const { return impl_->config; }
std::int64_t MultiheadAttention::head_dim() const {
  return impl_->config.embed_dim / impl_->config.num_heads;
}
std::int64_t MultiheadAttention::source_len(std::int64_t key_len) const {
  return mha::source_len(impl_->config, key_len);
}

std::vector<std::string> MultiheadAttention::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& p : impl_->params.all()) names.push_back(p.name);
  return names;
}

std::vector<std::int64_t> MultiheadAttention::parameter_shape(const std::string& name) const {
  return impl_->params.get(name).shape;
}

void MultiheadAttention::set_parameter(const std::string& name, const float* data, std::size_t count) {
  impl_->params.set(name, data, count);
}

const std::vector<float>& MultiheadAttention::parameter(const std::string& name) const {
  return impl_->params.get(name).values;
}

std::uint64_t MultiheadAttention::forward_growth_bytes(std::int64_t batch, std::int64_t query_len,
                                                       std::int64_t key_len, bool self_attention,
                                                       NeedWeights need_weights) const {
  check_call_shape(impl_->config, batch, query_len, key_len);
  if (batch == 0 || query_len == 0) return 0;
  Growth count = Growth::count();
  impl_->fit(impl_->plan(batch, query_len, key_len, self_attention, need_weights), count);
  return count.bytes();
}

void MultiheadAttention::forward(const ForwardInput& in, const ForwardOptions& o,
                                 const ForwardOutputs& out) {
  const Config& c = impl_->config;
  check_forward(c, in, o, out);
  if (in.batch == 0 || in.query_len == 0) return;  // every result is empty

  const Call call = impl_->plan(in.batch, in.query_len, in.key_len, in.key == nullptr && in.value == nullptr,
                                o.need_weights);
  Growth grow = Growth::apply();
  impl_->fit(call, grow);
  Parameters& p = impl_->params;
  p.prepare(call.fused);
  ThreadPool& pool = thread_pool();

  const Projected x = project(pool, call, in, c, p, impl_->ws);           // 1. q, k, v
  attend(pool, call, x, c, p, o, out, impl_->ws);                         // 2. Z_h into concat (q's buffer)
  parallel_linear(pool, x.q, call.B * call.Lq, x.q_stride, p.packed_o(), p.b_o(), out.output, call.E);  // 3.
  copy_out(call, x.q, x.q_stride, out);                                   // 4. concat, heads
}

}  // namespace mha
