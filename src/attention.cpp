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

#include "checks.hpp"
#include "kernels.hpp"
#include "mha.hpp"
#include "parameters.hpp"

namespace mha {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Scratch reused across calls: grown when shapes grow, never shrunk, so a
// steady stream of calls allocates nothing.
struct Workspace {
  std::vector<float> q, k, v, concat, scores;
  static void fit(std::vector<float>& buf, std::size_t n) {
    if (buf.size() < n) buf.resize(n);
  }
};

// Adds every mask that applies to query row i of (batch b, head h) to the
// scores of its first Lk keys; the bias_kv and zero-attention keys after them
// are never masked.
void add_masks(float* scores, std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t num_heads,
               std::int64_t lq, std::int64_t lk, const ForwardOptions& o) {
  if (o.attn.present()) {
    // [Lq, Lk] shared by every (b, h), or [B*H, Lq, Lk] indexed b*H + h.
    const std::int64_t off = o.attn_per_head ? ((b * num_heads + h) * lq + i) * lk : i * lk;
    if (o.attn.blocked) {
      for (std::int64_t j = 0; j < lk; ++j)
        if (o.attn.blocked[off + j]) scores[j] += kNegInf;
    } else {
      for (std::int64_t j = 0; j < lk; ++j) scores[j] += o.attn.additive[off + j];
    }
  }
  if (o.key_padding.present()) {
    const std::int64_t off = b * lk;  // [B, Lk]
    if (o.key_padding.blocked) {
      for (std::int64_t j = 0; j < lk; ++j)
        if (o.key_padding.blocked[off + j]) scores[j] += kNegInf;
    } else {
      for (std::int64_t j = 0; j < lk; ++j) scores[j] += o.key_padding.additive[off + j];
    }
  }
  if (o.is_causal)  // top-left aligned, as torch.tril(ones(Lq, Lk))
    for (std::int64_t j = i + 1; j < lk; ++j) scores[j] += kNegInf;
  if (o.valid_lens != nullptr) {
    const std::int64_t len = o.valid_lens_per_query ? o.valid_lens[b * lq + i] : o.valid_lens[b];
    for (std::int64_t j = std::max<std::int64_t>(len, 0); j < lk; ++j) scores[j] += kNegInf;
  }
}

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

  const Parameters& p = impl_->params;
  Workspace& ws = impl_->ws;
  const std::size_t B = std::size_t(in.batch), Lq = std::size_t(in.query_len),
                    Lk = std::size_t(in.key_len);
  const std::size_t E = std::size_t(c.embed_dim), H = std::size_t(c.num_heads), d = E / H;
  const std::size_t S = std::size_t(source_len(in.key_len));
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = std::size_t(c.kdim), vdim = in.value ? std::size_t(c.vdim) : kdim;

  // Projections. q, k, v: [B*L, E] row-major.
  Workspace::fit(ws.q, B * Lq * E);
  Workspace::fit(ws.k, B * Lk * E);
  Workspace::fit(ws.v, B * Lk * E);
  Workspace::fit(ws.concat, B * Lq * E);
  Workspace::fit(ws.scores, S);
  simd::linear(in.query, B * Lq, E, p.packed_q(), p.b_q(), ws.q.data(), E);
  simd::linear(key, B * Lk, kdim, p.packed_k(), p.b_k(), ws.k.data(), E);
  simd::linear(value, B * Lk, vdim, p.packed_v(), p.b_v(), ws.v.data(), E);

  const float scale = 1.0f / std::sqrt(float(d));
  const bool fully_masked_nan = o.fully_masked_rows == FullyMaskedRows::nan;
  if (o.need_weights == NeedWeights::average) std::fill(out.weights, out.weights + B * Lq * S, 0.0f);
  float* scores = ws.scores.data();

  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t h = 0; h < H; ++h) {
      for (std::size_t i = 0; i < Lq; ++i) {
        const float* q_i = ws.q.data() + (b * Lq + i) * E + h * d;  // q[b, i, h, :]
        float* z = ws.concat.data() + (b * Lq + i) * E + h * d;     // concat[b, i, h*d ..]
        for (std::size_t j = 0; j < Lk; ++j)                        // k[b, j, h, :]
          scores[j] = simd::dot(q_i, ws.k.data() + (b * Lk + j) * E + h * d, d) * scale;
        std::size_t j = Lk;
        if (c.add_bias_kv) scores[j++] = simd::dot(q_i, p.bias_k() + h * d, d) * scale;
        if (c.add_zero_attn) scores[j++] = 0.0f;  // q . 0
        add_masks(scores, std::int64_t(b), std::int64_t(h), std::int64_t(i), std::int64_t(H),
                  std::int64_t(Lq), std::int64_t(Lk), o);

        std::fill(z, z + d, 0.0f);
        const float m = simd::max(scores, S);
        if (S > 0 && m == kNegInf) {  // every key blocked: the fully-masked-row policy
          const float fill = fully_masked_nan ? kNaN : 0.0f;
          std::fill(scores, scores + S, fill);
          std::fill(z, z + d, fill);
        } else if (S > 0) {
          const float sum = simd::exp_shifted_sum(scores, S, m);
          simd::scale(1.0f / sum, scores, S);  // scores now hold P_h[b, i, :]
          for (std::size_t jj = 0; jj < Lk; ++jj)
            simd::axpy(scores[jj], ws.v.data() + (b * Lk + jj) * E + h * d, z, d);
          if (c.add_bias_kv) simd::axpy(scores[Lk], p.bias_v() + h * d, z, d);
          // The zero-attention key's value row is 0: it only dilutes the weights.
        }
        // With S == 0 there is nothing to attend to: Z stays 0, as PyTorch's empty sum.

        if (o.need_weights == NeedWeights::per_head) {
          std::copy(scores, scores + S, out.weights + ((b * H + h) * Lq + i) * S);
        } else if (o.need_weights == NeedWeights::average) {
          simd::axpy(1.0f / float(H), scores, out.weights + (b * Lq + i) * S, S);
        }
      }
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
