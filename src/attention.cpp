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
#include "checks.hpp"
#include "kernels.hpp"
#include "mha.hpp"
#include "parameters.hpp"
#include "thread_pool.hpp"

namespace mha {
namespace {

// Scratch reused across calls: grown when shapes grow, never shrunk, so a
// steady stream of calls allocates nothing.
struct Workspace {
  std::vector<float> q, k, v, packed;
  std::vector<HeadScratch> head;  // one per thread
  // At least one element, so that data() is never null: an empty key
  // sequence still gets valid (unread) row pointers.
  static void fit(std::vector<float>& buf, std::size_t n) {
    if (buf.size() < std::max<std::size_t>(n, 1)) buf.resize(std::max<std::size_t>(n, 1));
  }
};

// Rows of a GEMM per task: whole micro-kernel row groups, enough work to be
// worth a hand-off.
constexpr std::size_t kTaskRows = 8 * kGemmRows;
// Query rows per attention task: one query block of attend_rows.
constexpr std::size_t kTaskQueries = kQueryBlock;

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

// y = x . W^T + bias spread over the pool: by row blocks when there are many
// rows, by column panels when there are few (a decoding step has one row).
// Each element is computed by one thread in the same order, whatever the split.
void parallel_linear(ThreadPool& pool, const float* x, std::size_t m, std::size_t x_stride,
                     const PackedWeight& w, const float* bias, float* y, std::size_t y_stride) {
  constexpr std::size_t P = PackedWeight::kPanel;
  const std::size_t threads = pool.size();
  if (threads == 1 || m * w.n * w.k < kParallelWork) {
    simd::linear(x, m, x_stride, w, bias, y, y_stride);
    return;
  }
  const Panels all = panels_of(w);
  if (m >= kTaskRows * threads) {
    pool.run((m + kTaskRows - 1) / kTaskRows, [&](std::size_t t, std::size_t) {
      const std::size_t r0 = t * kTaskRows, rows = std::min(kTaskRows, m - r0);
      simd::gemm(x + r0 * x_stride, rows, x_stride, all, w.k, w.n, bias, false, y + r0 * y_stride, y_stride);
    });
    return;
  }
  const std::size_t panels = (w.n + P - 1) / P;
  const std::size_t per_task = std::max<std::size_t>(1, panels / (4 * threads));
  pool.run((panels + per_task - 1) / per_task, [&](std::size_t t, std::size_t) {
    const std::size_t p0 = t * per_task, p1 = std::min(panels, p0 + per_task);
    const std::size_t col0 = p0 * P, cols = std::min(w.n, p1 * P) - col0;
    const Panels part{all.data + p0 * all.panel_stride, all.panel_stride};
    simd::gemm(x, m, x_stride, part, w.k, cols, bias ? bias + col0 : nullptr, false, y + col0, y_stride);
  });
}

}  // namespace

void set_num_threads(int threads) { thread_pool().resize(std::size_t(std::max(threads, 1))); }
int num_threads() { return int(thread_pool().size()); }
int max_threads() { return int(ThreadPool::max_threads()); }

struct MultiheadAttention::Impl {
  Impl(const Config& c, std::uint64_t seed) : config(c), params(c, seed) {}
  Config config;
  Parameters params;
  Workspace ws;
};

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
  return key_len + (impl_->config.add_bias_kv ? 1 : 0) + (impl_->config.add_zero_attn ? 1 : 0);
}

std::vector<std::string> MultiheadAttention::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& p : impl_->params.all()) names.push_back(p.name);
  return names;
}

std::vector<std::int64_t> MultiheadAttention::parameter_shape(const std::string& name) const {
  const Parameter* p = impl_->params.find(name);
  if (p == nullptr) throw Error(Error::Kind::range, "parameter '" + name + "' does not exist in this layer");
  return p->shape;
}

void MultiheadAttention::set_parameter(const std::string& name, const float* data, std::size_t count) {
  impl_->params.set(name, data, count);
}

const std::vector<float>& MultiheadAttention::parameter(const std::string& name) const {
  const Parameter* p = impl_->params.find(name);
  if (p == nullptr) throw Error(Error::Kind::range, "parameter '" + name + "' does not exist in this layer");
  return p->values;
}

void MultiheadAttention::forward(const ForwardInput& in, const ForwardOptions& o,
                                 const ForwardOutputs& out) {
  const Config& c = impl_->config;
  check_forward(c, in, o, out);

  if (in.batch == 0 || in.query_len == 0) return;  // every result is empty
  Parameters& p = impl_->params;
  const bool fused = in.key == nullptr && in.value == nullptr && p.fuses_qkv();
  p.prepare(fused);
  Workspace& ws = impl_->ws;
  const std::size_t B = std::size_t(in.batch), Lq = std::size_t(in.query_len),
                    Lk = std::size_t(in.key_len);
  const std::size_t E = std::size_t(c.embed_dim), H = std::size_t(c.num_heads), d = E / H;
  const std::size_t S = std::size_t(source_len(in.key_len));
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = std::size_t(c.kdim), vdim = in.value ? std::size_t(c.vdim) : kdim;

  ThreadPool& pool = thread_pool();
  // Projections; q comes out already scaled by 1/sqrt(d). Self-attention with
  // in_proj_weight is one [B*L, E] x [E, 3E] GEMM: q, k, v interleaved per row.
  const float *q, *k, *v;
  std::size_t q_stride = E, k_stride = E, v_stride = E;
  if (fused) {
    Workspace::fit(ws.q, B * Lq * 3 * E);
    parallel_linear(pool, in.query, B * Lq, E, p.packed_qkv(), p.b_qkv(), ws.q.data(), 3 * E);
    q = ws.q.data();  // [B*L, 3E]: q | k | v
    k = q + E;
    v = q + 2 * E;
    q_stride = k_stride = v_stride = 3 * E;
  } else {
    Workspace::fit(ws.q, B * Lq * E);
    Workspace::fit(ws.k, B * Lk * E);
    Workspace::fit(ws.v, B * Lk * E);
    parallel_linear(pool, in.query, B * Lq, E, p.packed_q(), p.b_q(), ws.q.data(), E);
    parallel_linear(pool, key, B * Lk, kdim, p.packed_k(), p.b_k(), ws.k.data(), E);
    parallel_linear(pool, value, B * Lk, vdim, p.packed_v(), p.b_v(), ws.v.data(), E);
    q = ws.q.data();
    k = ws.k.data();
    v = ws.v.data();
  }

  // Z_h overwrites q_h in place: a block of query rows reads its q rows for
  // the last time before writing its Z rows, and no other block reads them.
  // So concat [B*Lq, E] lives in q's buffer, rows q_stride apart: one buffer
  // of B*Lq*E floats fewer at large L.
  float* concat = const_cast<float*>(q);
  const std::size_t concat_stride = q_stride;

  // Head h is columns h*d .. h*d+d-1 of q, k, v and concat (the [B, L, H, d] view).
  auto head_input = [&](std::size_t b, std::size_t h) {
    return HeadInput{q + b * Lq * q_stride + h * d, q_stride,
                     k + b * Lk * k_stride + h * d, k_stride,
                     v + b * Lk * v_stride + h * d, v_stride,
                     c.add_bias_kv ? p.bias_k() + h * d : nullptr,
                     c.add_bias_kv ? p.bias_v() + h * d : nullptr,
                     c.add_zero_attn, Lq, Lk, d};
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

  const std::size_t per_head = packed_head_size(S, d);
  if (ws.head.size() < pool.size()) ws.head.resize(pool.size());
  if (o.need_weights == NeedWeights::average) std::fill(out.weights, out.weights + B * Lq * S, 0.0f);
  const std::size_t row_tasks = (Lq + kTaskQueries - 1) / kTaskQueries;
  auto attend = [&](std::size_t b, std::size_t h, std::size_t row_task, const float* packed, std::size_t worker) {
    const std::size_t i0 = row_task * kTaskQueries, i1 = std::min(Lq, i0 + kTaskQueries);
    attend_rows(head_input(b, h), packed, i0, i1, masks_of(b, h), head_output(b, h), ws.head[worker]);
  };

  if (o.need_weights != NeedWeights::average && row_tasks >= 2 * pool.size()) {
    // Long queries: one (batch, head) at a time, its keys and values packed
    // once and its query blocks spread over the threads. Packed scratch stays
    // one head's worth, so memory grows with L, not with L times the heads.
    Workspace::fit(ws.packed, per_head);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h) {
        pack_head(head_input(b, h), ws.packed.data());
        run_tasks(pool, row_tasks, Lq * S * d, [&](std::size_t t, std::size_t worker) { attend(b, h, t, ws.packed.data(), worker); });
      }
  } else {
    // Few queries (a decoding step) or averaged weights: every head packed
    // first, then tasks over (batch, [head,] query block). Averaged weights sum
    // over heads into one row, so there a task takes every head of its rows,
    // in order: the sum is the same for any thread count.
    Workspace::fit(ws.packed, B * H * per_head);
    run_tasks(pool, B * H, B * H * S * d, [&](std::size_t bh, std::size_t) {
      pack_head(head_input(bh / H, bh % H), ws.packed.data() + bh * per_head);
    });
    const bool heads_per_task = o.need_weights != NeedWeights::average;
    run_tasks(pool, B * row_tasks * (heads_per_task ? H : 1), B * H * Lq * S * d, [&](std::size_t t, std::size_t worker) {
      const std::size_t rt = t % row_tasks, rest = t / row_tasks;
      const std::size_t b = heads_per_task ? rest / H : rest;
      const std::size_t h0 = heads_per_task ? rest % H : 0, h1 = heads_per_task ? h0 + 1 : H;
      for (std::size_t h = h0; h < h1; ++h) attend(b, h, rt, ws.packed.data() + (b * H + h) * per_head, worker);
    });
  }

  parallel_linear(pool, concat, B * Lq, concat_stride, p.packed_o(), p.b_o(), out.output, E);
  if (out.concat)
    for (std::size_t r = 0; r < B * Lq; ++r)
      std::copy(concat + r * concat_stride, concat + r * concat_stride + E, out.concat + r * E);
  if (out.heads) {  // [B, Lq, H, d] -> [B, H, Lq, d]
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t i = 0; i < Lq; ++i) {
          const float* src = concat + (b * Lq + i) * concat_stride + h * d;
          std::copy(src, src + d, out.heads + ((b * H + h) * Lq + i) * d);
        }
  }
}

}  // namespace mha
