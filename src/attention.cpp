// The layer's forward pass, as its steps, composed from the primitives in
// kernels.hpp (no intrinsic appears here). Shapes batch-first; H query
// heads, Hkv key/value heads, head width d:
//
//   1. q = query . Wq^T + bq        [B, Lq, H*d]    (scaled: see Parameters::prepare)
//      k = key   . Wk^T + bk        [B, Lk, Hkv*d]  (+ bias_k row, + zero row: S keys)
//      v = value . Wv^T + bv        [B, Lk, Hkv*d]
//      then per head: QK-norm, rotary embedding (query_key.hpp)
//   2. per query head h, reading key/value head g = h / (H / Hkv):
//        s = q_h k_g^T, softcap, ALiBi, masks (score_rules.hpp)
//        P_h = softmax(s)                             [B, Lq, S]
//        Z_h = P_h v_g                                [B, Lq, d] -> concat columns h*d ..
//   3. output = concat . Wo^T + bo  [B, Lq, E]
//   4. copies of concat and the heads, when asked for
#include <algorithm>
#include <cmath>
#include <limits>

#include "attention_head.hpp"
#include "buffers.hpp"
#include "checks.hpp"
#include "forward_steps.hpp"
#include "kernels.hpp"
#include "kv_cache.hpp"
#include "mha.hpp"
#include "parallel_loops.hpp"
#include "parameters.hpp"
#include "query_key.hpp"
#include "score_rules.hpp"
#include "thread_pool.hpp"

namespace mha {
namespace {

// Rows per task of the QK-norm and rotary step.
constexpr std::size_t kTaskTransformRows = 64;
// Packed keys and values of every head at once up to this size; beyond it,
// one head at a time, so that memory grows with L and not with L x heads.
constexpr std::size_t kAllHeadsBytes = std::size_t(32) << 20;

// BLOOM's ALiBi slopes (build_alibi_tensor), times log2(e): heads 1 .. n of
// the largest power of two n <= H get (2^(-8/n))^k, the rest (2^(-4/n))^k
// for odd k.
std::vector<float> alibi_slopes(std::int64_t heads) {
  std::int64_t n = 1;
  while (n * 2 <= heads) n *= 2;
  std::vector<float> slopes;
  for (std::int64_t k = 1; k <= n; ++k) slopes.push_back(float(std::pow(2.0, -8.0 * double(k) / double(n)) * kLog2e));
  for (std::int64_t k = 1; std::int64_t(slopes.size()) < heads; k += 2)
    slopes.push_back(float(std::pow(2.0, -4.0 * double(k) / double(n)) * kLog2e));
  return slopes;
}

}  // namespace

void set_num_threads(int threads) { thread_pool().resize(std::size_t(std::max(threads, 1))); }
int num_threads() { return int(thread_pool().size()); }
int max_threads() { return int(ThreadPool::max_threads()); }

struct MultiheadAttention::Impl {
  Impl(const Config& c, std::uint64_t seed)
      : config(c), params(c, seed), inv_freq(rope_inverse_frequencies(c.rope)),
        long_inv_freq(c.rope.scaling == Rope::Scaling::longrope ? rope_inverse_frequencies(c.rope, true)
                                                                : std::vector<double>{}),
        alibi(c.alibi ? alibi_slopes(c.num_heads) : std::vector<float>{}) {}
  Config config;
  Parameters params;
  std::vector<double> inv_freq;       // rotary frequencies, or empty
  std::vector<double> long_inv_freq;  // longrope's for calls past the original context, or empty
  std::vector<float> alibi;      // slopes in base-2 units, or empty
  Workspace ws;

  Call plan(std::int64_t batch, std::int64_t query_len, std::int64_t key_len, bool self_attention,
            NeedWeights need_weights) const;
  // The rotary frequencies of a call: longrope's long ones when the call's
  // largest position reaches past the original context.
  const std::vector<double>& rope_frequencies(const ForwardInput& in, const ForwardOptions& o,
                                              std::int64_t first_position) const {
    if (long_inv_freq.empty()) return inv_freq;
    std::int64_t largest = first_position + in.query_len - 1;
    if (o.positions) largest = *std::max_element(o.positions, o.positions + in.batch * in.query_len);
    return rope_long_context(config.rope, largest) ? long_inv_freq : inv_freq;
  }
  // Grows (or counts) every buffer a call of this shape needs: the
  // workspace, each thread's scratch, and the packed weights.
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
  call.Hkv = std::size_t(c.num_kv_heads);
  call.d = std::size_t(c.head_dim);
  call.group = call.H / call.Hkv;
  call.self = self_attention;
  call.fused = self_attention && params.fuses_qkv();
  call.need_weights = need_weights;
  call.in_place = attends_in_place(call.Lq, call.d, c.add_bias_kv || c.add_zero_attn);
  call.per_head = packed_head_size(call.S, call.d);
  const std::uint64_t all_heads = std::uint64_t(call.B) * call.Hkv * call.per_head;
  call.one_head_at_a_time = need_weights != NeedWeights::average && all_heads * sizeof(float) > kAllHeadsBytes;
  return call;
}

void MultiheadAttention::Impl::fit(const Call& c, Growth& grow) {
  const std::uint64_t B = c.B, Lq = c.Lq, Lk = c.Lk, qw = c.H * c.d, kvw = c.Hkv * c.d;
  grow.add_bytes(params.prepare_bytes(c.fused));
  if (c.fused) {
    grow(ws.q, B * Lq * (qw + 2 * kvw));  // [B*L, H*d + 2*Hkv*d]: q | k | v
  } else {
    const std::uint64_t kv_rows = c.self ? B * Lq : B * Lk;  // with a cache, Lk counts the cached keys too
    grow(ws.q, B * Lq * qw);
    grow(ws.k, kv_rows * kvw);
    grow(ws.v, kv_rows * kvw);
  }
  if (!c.in_place) grow(ws.packed, c.one_head_at_a_time ? c.per_head : B * c.Hkv * c.per_head);
  // One scratch per thread; a count for threads without one yet counts
  // what a new one would take.
  const std::size_t threads = thread_pool().size();
  const bool weights = c.need_weights != NeedWeights::none;
  grow(ws.angles, threads * std::uint64_t(config.rope.dim));
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

// Keys and values read where a cache or memory holds them.
void read_from(Projected& x, const KVCache::Storage& s) {
  x.k = const_cast<float*>(s.k.data()) + s.at(0, 0, 0);
  x.v = const_cast<float*>(s.v.data()) + s.at(0, 0, 0);
  x.k_stride = x.v_stride = std::size_t(s.row_stride);
  x.k_batch = x.v_batch = std::size_t(s.rows * s.width);
  x.k_head = x.v_head = std::size_t(s.head_stride);
}

// Step 1, the projections (forward_steps.hpp, Projected, says where they land).
Projected project(ThreadPool& pool, const Call& c, const ForwardInput& in, const Config& config, Parameters& p,
                  Workspace& ws) {
  const std::size_t E = c.E, qw = c.H * c.d, kvw = c.Hkv * c.d;
  // The score scale, where it is not folded into Wq (Parameters::q_post_scale).
  auto scale_q = [&] {
    if (const float s = p.q_post_scale(); s != 1.0f) simd::scale(s, ws.q.data(), c.B * c.Lq * qw);
  };
  if (in.memory) {  // keys and values projected once, by project_memory
    parallel_linear(pool, in.query, c.B * c.Lq, E, p.packed_q(), p.b_q(), ws.q.data(), qw);
    scale_q();
    Projected x{ws.q.data(), nullptr, nullptr, qw, 0, 0};
    read_from(x, in.memory->storage());
    return x;
  }
  if (c.fused) {
    const std::size_t w = qw + 2 * kvw;
    parallel_linear(pool, in.query, c.B * c.Lq, E, p.packed_qkv(), p.b_qkv(), ws.q.data(), w);
    float* q = ws.q.data();
    return {q, q + qw, q + qw + kvw, w, w, w};
  }
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = std::size_t(config.kdim), vdim = in.value ? std::size_t(config.vdim) : kdim;
  const std::size_t kv_rows = c.self ? c.B * c.Lq : c.B * c.Lk;  // with a cache, Lk counts the cached keys too
  parallel_linear(pool, in.query, c.B * c.Lq, E, p.packed_q(), p.b_q(), ws.q.data(), qw);
  scale_q();
  parallel_linear(pool, key, kv_rows, kdim, p.packed_k(), p.b_k(), ws.k.data(), kvw);
  parallel_linear(pool, value, kv_rows, vdim, p.packed_v(), p.b_v(), ws.v.data(), kvw);
  return {ws.q.data(), ws.k.data(), ws.v.data(), qw, kvw, kvw};
}

// Step 1b, QK-norm and the rotary embedding, in place, each row at its
// position (self-attention: the keys are the queries' tokens).
void transform(ThreadPool& pool, const Call& c, const Projected& x, const Config& config, const Parameters& p,
               const std::vector<double>& inv_freq, const ForwardOptions& o, std::int64_t first_position,
               Workspace& ws) {
  QueryKeyTransform t;
  t.heads = c.H;
  t.kv_heads = c.Hkv;
  t.d = c.d;
  t.q_norm = p.q_norm();
  t.k_norm = p.k_norm();
  t.eps = float(config.qk_norm_eps);
  t.rope_dim = std::size_t(config.rope.dim);
  t.layout = config.rope.layout;
  t.inv_freq = inv_freq.data();
  t.attention_factor = config.rope.attention_factor;
  if (!t.active()) return;
  const std::size_t r = t.rope_dim;
  auto rows = [&](float* q, std::size_t q_stride, float* k, std::size_t k_stride, std::size_t n, std::size_t len) {
    auto position = [&](std::size_t row) {
      return o.positions ? std::int64_t(o.positions[row]) : first_position + std::int64_t(row % len);
    };
    run_tasks(pool, ceil_div(n, kTaskTransformRows), n * (c.H + c.Hkv) * c.d * 8, [&](std::size_t task, std::size_t worker) {
      const std::size_t r0 = task * kTaskTransformRows, r1 = std::min(n, r0 + kTaskTransformRows);
      transform_queries_keys(t, q, q_stride, k, k_stride, r0, r1, position, ws.angles.data() + worker * r);
    });
  };
  if (c.self) {  // q and k rows of the same tokens, at the same positions
    rows(x.q, x.q_stride, x.k, x.k_stride, c.B * c.Lq, c.Lq);
  } else {  // cross-attention: QK-norm only (no positions), q and k rows apart
    rows(x.q, x.q_stride, nullptr, 0, c.B * c.Lq, c.Lq);
    if (x.k_batch == 0) rows(nullptr, 0, x.k, x.k_stride, c.B * c.Lk, c.Lk);  // a memory's keys are done
  }
}

// Step 2, the attention of every head, is attend (attend_heads.cpp).

// Step 4, the copies out: concat [B, Lq, H*d] and the heads [B, Lq, H, d] ->
// [B, H, Lq, d], both from concat's rows in q's buffer.
void copy_out(const Call& c, const float* concat, std::size_t concat_stride, const ForwardOutputs& out) {
  const std::size_t B = c.B, Lq = c.Lq, H = c.H, d = c.d, width = H * d;
  if (out.concat)
    for (std::size_t r = 0; r < B * Lq; ++r)
      std::copy(concat + r * concat_stride, concat + r * concat_stride + width, out.concat + r * width);
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
std::int64_t MultiheadAttention::head_dim() const { return impl_->config.head_dim; }
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

void MultiheadAttention::check_parameter(const std::string& name, const float* data, std::size_t count) const {
  impl_->params.check(name, data, count);
}

std::vector<float> MultiheadAttention::parameter(const std::string& name) const {
  return impl_->params.values(name);
}

std::uint64_t MultiheadAttention::weight_bytes() const { return impl_->params.bytes(); }

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
  check_sources(this, in);
  check_forward(c, in, o, out);
  if (in.batch == 0 || in.query_len == 0) return;  // every result is empty

  KVCache::Storage* cache = in.cache ? &in.cache->storage() : nullptr;
  const KVCache::Storage* memory = in.memory ? &in.memory->storage() : nullptr;
  const std::int64_t first_position = cache ? cache->length : 0;
  std::int64_t keys = in.key_len;  // the keys attended
  if (cache) {
    cache->make_room(c.sliding_window, in.query_len);
    keys = cache->held() + in.query_len;
  }
  if (memory) keys = memory->held();
  const Call call = impl_->plan(in.batch, in.query_len, keys, in.key == nullptr && in.value == nullptr && !memory,
                                o.need_weights);
  Growth grow = Growth::apply();
  impl_->fit(call, grow);
  Parameters& p = impl_->params;
  p.prepare(call.fused);
  ThreadPool& pool = thread_pool();

  Projected x = project(pool, call, in, c, p, impl_->ws);                     // 1. q, k, v
  transform(pool, call, x, c, p, impl_->rope_frequencies(in, o, first_position), o, first_position, impl_->ws);  // QK-norm, RoPE
  std::size_t columns = call.S;
  if (cache) {  // the call's keys and values join the cache; attention reads them there
    cache->append(call.B, call.Lq, x.k, x.k_stride, x.v, x.v_stride, o.positions, first_position);
    read_from(x, *cache);
    columns = std::size_t(cache->length);
  }
  const ScoreRules rules = rules_of(call, c, impl_->alibi, o, cache);
  attend(pool, call, x, c, p, rules, o, out, columns, impl_->ws);             // 2. Z_h into concat
  parallel_linear(pool, x.q, call.B * call.Lq, x.q_stride, p.packed_o(), p.b_o(), out.output, call.E);  // 3.
  copy_out(call, x.q, x.q_stride, out);                                       // 4. concat, heads
}

void MultiheadAttention::project_memory(const float* input, std::int64_t batch, std::int64_t length, KVCache& memory) {
  const Config& c = impl_->config;
  KVCache::Storage& m = memory.storage();
  check_memory(c, this, m, input, batch, length);
  Parameters& p = impl_->params;
  p.prepare(false);
  ThreadPool& pool = thread_pool();
  const std::size_t rows = std::size_t(batch * length), kd = std::size_t(c.kdim), w = std::size_t(m.width);
  const std::size_t d = std::size_t(c.head_dim), heads = std::size_t(c.num_kv_heads), P = PackedWeight::kPanel;
  m.offset = 0;
  if (d % P == 0) {
    // Head-major, as a cache's: each head's keys one run, which every decode
    // step streams. A GEMM per (sequence, head) over that head's rows of Wk
    // and Wv (whole panels) writes them there.
    m.rows = m.capacity;  // a memory is never a ring
    m.head_stride = m.rows * c.head_dim;
    m.row_stride = c.head_dim;
    run_tasks(pool, std::size_t(batch) * heads, rows * kd * w, [&](std::size_t t, std::size_t) {
      const std::size_t b = t / heads, g = t % heads, p0 = g * d / P, p1 = p0 + d / P;
      const float* x = input + b * std::size_t(length) * kd;
      const float* bk = p.b_k() ? p.b_k() + g * d : nullptr;
      const float* bv = p.b_v() ? p.b_v() + g * d : nullptr;
      simd::linear_panels(x, std::size_t(length), kd, p.packed_k(), p0, p1, bk, m.k.data() + m.at(std::int64_t(b), std::int64_t(g), 0), d);
      simd::linear_panels(x, std::size_t(length), kd, p.packed_v(), p0, p1, bv, m.v.data() + m.at(std::int64_t(b), std::int64_t(g), 0), d);
    });
  } else {
    // The GEMM's rows as they come: [B, M, Hkv*d] is [B*M, Hkv*d] when M is the capacity.
    m.use_rows();
    parallel_linear(pool, input, rows, kd, p.packed_k(), p.b_k(), m.k.data(), w);
    parallel_linear(pool, input, rows, kd, p.packed_v(), p.b_v(), m.v.data(), w);
  }
  if (const float* norm = p.k_norm())
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t g = 0; g < c.num_kv_heads; ++g)
        for (std::int64_t r = 0; r < length; ++r)
          simd::rms_norm(m.k.data() + m.at(b, g, r), d, norm, float(c.qk_norm_eps));
  m.length = length;
  m.first = 0;
}

}  // namespace mha
