#include "reference.hpp"

#include <cmath>
#include <limits>
#include <vector>

namespace mha::reference {
namespace {

using Matrix = std::vector<double>;  // row-major

// y[rows, n] = x[rows, k] . W[n, k]^T + bias
Matrix linear(const float* x, std::size_t rows, std::size_t k, const float* w, std::size_t n,
              const float* bias) {
  Matrix y(rows * n);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (std::size_t t = 0; t < k; ++t) acc += double(x[r * k + t]) * double(w[j * k + t]);
      y[r * n + j] = acc;
    }
  return y;
}

const float* optional(const MultiheadAttention& layer, const char* name, std::size_t offset = 0) {
  for (const auto& n : layer.parameter_names())
    if (n == name) return layer.parameter(name).data() + offset;
  return nullptr;
}

}  // namespace

void forward(const MultiheadAttention& layer, const ForwardInput& in, const ForwardOptions& o,
             const ForwardOutputs& out) {
  const Config& c = layer.config();
  const std::size_t B = in.batch, Lq = in.query_len, Lk = in.key_len;
  const std::size_t E = c.embed_dim, H = c.num_heads, d = E / H, S = layer.source_len(in.key_len);
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = c.kdim, vdim = in.value ? c.vdim : kdim;

  const bool fused = optional(layer, "in_proj_weight") != nullptr;
  const float* wq = fused ? optional(layer, "in_proj_weight") : optional(layer, "q_proj_weight");
  const float* wk = fused ? wq + E * E : optional(layer, "k_proj_weight");
  const float* wv = fused ? wq + 2 * E * E : optional(layer, "v_proj_weight");
  const float* bq = optional(layer, "in_proj_bias");
  const float* bk = bq ? bq + E : nullptr;
  const float* bv = bq ? bq + 2 * E : nullptr;

  Matrix q = linear(in.query, B * Lq, E, wq, E, bq);  // [B, Lq, E]
  Matrix k = linear(key, B * Lk, kdim, wk, E, bk);     // [B, Lk, E]
  Matrix v = linear(value, B * Lk, vdim, wv, E, bv);   // [B, Lk, E]
  const float* bias_k = optional(layer, "bias_k");
  const float* bias_v = optional(layer, "bias_v");

  auto key_at = [&](std::size_t b, std::size_t j, std::size_t h, std::size_t t) -> double {
    if (j < Lk) return k[(b * Lk + j) * E + h * d + t];
    if (bias_k && j == Lk) return bias_k[h * d + t];
    return 0.0;  // the zero-attention key
  };
  auto value_at = [&](std::size_t b, std::size_t j, std::size_t h, std::size_t t) -> double {
    if (j < Lk) return v[(b * Lk + j) * E + h * d + t];
    if (bias_v && j == Lk) return bias_v[h * d + t];
    return 0.0;
  };
  auto mask_at = [&](std::size_t b, std::size_t h, std::size_t i, std::size_t j) -> double {
    if (j >= Lk) return 0.0;  // extra keys are never masked
    const double inf = std::numeric_limits<double>::infinity();
    double m = 0.0;
    if (o.attn.present()) {
      const std::size_t idx = o.attn_per_head ? ((b * H + h) * Lq + i) * Lk + j : i * Lk + j;
      m += o.attn.blocked ? (o.attn.blocked[idx] ? -inf : 0.0) : o.attn.additive[idx];
    }
    if (o.key_padding.present()) {
      const std::size_t idx = b * Lk + j;
      m += o.key_padding.blocked ? (o.key_padding.blocked[idx] ? -inf : 0.0)
                                 : o.key_padding.additive[idx];
    }
    if (o.is_causal && j > i) m = -inf;
    if (o.valid_lens) {
      const std::int64_t len = o.valid_lens_per_query ? o.valid_lens[b * Lq + i] : o.valid_lens[b];
      if (std::int64_t(j) >= len) m = -inf;
    }
    return m;
  };

  Matrix concat(B * Lq * E, 0.0);
  std::vector<double> p(S);
  if (o.need_weights == NeedWeights::average)
    for (std::size_t n = 0; n < B * Lq * S; ++n) out.weights[n] = 0.0f;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < Lq; ++i) {
        double mx = -std::numeric_limits<double>::infinity();
        for (std::size_t j = 0; j < S; ++j) {
          double s = 0.0;
          for (std::size_t t = 0; t < d; ++t) s += q[(b * Lq + i) * E + h * d + t] * key_at(b, j, h, t);
          p[j] = s / std::sqrt(double(d)) + mask_at(b, h, i, j);
          if (p[j] > mx || p[j] != p[j]) mx = p[j];  // a NaN score makes the row NaN
        }
        const bool fully_masked = S > 0 && std::isinf(mx) && mx < 0;
        double sum = 0.0;
        for (std::size_t j = 0; j < S; ++j) sum += (p[j] = std::exp(p[j] - mx));
        for (std::size_t j = 0; j < S; ++j) {
          if (fully_masked)
            p[j] = o.fully_masked_rows == FullyMaskedRows::nan ? std::nan("") : 0.0;
          else
            p[j] /= sum;
        }
        for (std::size_t t = 0; t < d; ++t) {
          double z = fully_masked && o.fully_masked_rows == FullyMaskedRows::nan ? std::nan("") : 0.0;
          for (std::size_t j = 0; j < S; ++j) z += p[j] * value_at(b, j, h, t);
          concat[(b * Lq + i) * E + h * d + t] = z;
          if (out.heads) out.heads[((b * H + h) * Lq + i) * d + t] = float(z);
        }
        for (std::size_t j = 0; j < S; ++j) {
          if (o.need_weights == NeedWeights::per_head)
            out.weights[((b * H + h) * Lq + i) * S + j] = float(p[j]);
          else if (o.need_weights == NeedWeights::average)
            out.weights[(b * Lq + i) * S + j] += float(p[j] / double(H));
        }
      }

  const float* wo = layer.parameter("out_proj.weight").data();
  const float* bo = optional(layer, "out_proj.bias");
  for (std::size_t r = 0; r < B * Lq; ++r)
    for (std::size_t j = 0; j < E; ++j) {
      double acc = bo ? bo[j] : 0.0;
      for (std::size_t t = 0; t < E; ++t) acc += concat[r * E + t] * double(wo[j * E + t]);
      out.output[r * E + j] = float(acc);
      if (out.concat) out.concat[r * E + j] = float(concat[r * E + j]);
    }
}

}  // namespace mha::reference
