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

namespace mha {
namespace {

// Scratch reused across calls: grown when shapes grow, never shrunk, so a
// steady stream of calls allocates nothing.
struct Workspace {
  std::vector<float> q, k, v, concat;
  HeadScratch head;
  // At least one element, so that data() is never null: an empty key
  // sequence still gets valid (unread) row pointers.
  static void fit(std::vector<float>& buf, std::size_t n) {
    if (buf.size() < std::max<std::size_t>(n, 1)) buf.resize(std::max<std::size_t>(n, 1));
  }
};

}  // namespace

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
  p.prepare();
  Workspace& ws = impl_->ws;
  const std::size_t B = std::size_t(in.batch), Lq = std::size_t(in.query_len),
                    Lk = std::size_t(in.key_len);
  const std::size_t E = std::size_t(c.embed_dim), H = std::size_t(c.num_heads), d = E / H;
  const std::size_t S = std::size_t(source_len(in.key_len));
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = std::size_t(c.kdim), vdim = in.value ? std::size_t(c.vdim) : kdim;

  // Projections; q comes out already scaled by 1/sqrt(d). Self-attention with
  // in_proj_weight is one [B*L, E] x [E, 3E] GEMM: q, k, v interleaved per row.
  const float *q, *k, *v;
  std::size_t q_stride = E, k_stride = E, v_stride = E;
  if (in.key == nullptr && in.value == nullptr && p.has_packed_qkv()) {
    Workspace::fit(ws.q, B * Lq * 3 * E);
    simd::linear(in.query, B * Lq, E, p.packed_qkv(), p.b_qkv(), ws.q.data(), 3 * E);
    q = ws.q.data();  // [B*L, 3E]: q | k | v
    k = q + E;
    v = q + 2 * E;
    q_stride = k_stride = v_stride = 3 * E;
  } else {
    Workspace::fit(ws.q, B * Lq * E);
    Workspace::fit(ws.k, B * Lk * E);
    Workspace::fit(ws.v, B * Lk * E);
    simd::linear(in.query, B * Lq, E, p.packed_q(), p.b_q(), ws.q.data(), E);
    simd::linear(key, B * Lk, kdim, p.packed_k(), p.b_k(), ws.k.data(), E);
    simd::linear(value, B * Lk, vdim, p.packed_v(), p.b_v(), ws.v.data(), E);
    q = ws.q.data();
    k = ws.k.data();
    v = ws.v.data();
  }

  Workspace::fit(ws.concat, B * Lq * E);
  if (o.need_weights == NeedWeights::average) std::fill(out.weights, out.weights + B * Lq * S, 0.0f);
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t h = 0; h < H; ++h) {
      // Head h is columns h*d .. h*d+d-1 of q, k, v and concat (the [B, L, H, d] view).
      HeadInput hi{q + b * Lq * q_stride + h * d, q_stride,
                   k + b * Lk * k_stride + h * d, k_stride,
                   v + b * Lk * v_stride + h * d, v_stride,
                   c.add_bias_kv ? p.bias_k() + h * d : nullptr,
                   c.add_bias_kv ? p.bias_v() + h * d : nullptr,
                   c.add_zero_attn, Lq, Lk, d};
      HeadOutput ho{ws.concat.data() + b * Lq * E + h * d, E, nullptr, 0, false, 1.0f,
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
      const MaskContext mc{&o, std::int64_t(b), std::int64_t(h), std::int64_t(H), std::int64_t(Lq),
                           std::int64_t(Lk)};
      attend_head(hi, mc, ho, ws.head);
    }
  }

  simd::linear(ws.concat.data(), B * Lq, E, p.packed_o(), p.b_o(), out.output, E);
  if (out.concat) std::copy(ws.concat.begin(), ws.concat.begin() + B * Lq * E, out.concat);
  if (out.heads) {  // [B, Lq, H, d] -> [B, H, Lq, d]
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t h = 0; h < H; ++h)
        for (std::size_t i = 0; i < Lq; ++i) {
          const float* src = ws.concat.data() + (b * Lq + i) * E + h * d;
          std::copy(src, src + d, out.heads + ((b * H + h) * Lq + i) * d);
        }
  }
}

}  // namespace mha
