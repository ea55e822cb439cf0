#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "query_key.hpp"

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

// The four projections, under either kind of names: copies of the layer's
// values (a reduced weight's dequantized), which `owned` keeps alive.
struct Weights {
  std::vector<std::vector<float>> owned;
  const float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo, *q_norm, *k_norm, *sinks;
};

const float* optional(Weights& w, const MultiheadAttention& layer, const char* name) {
  for (const auto& n : layer.parameter_names())
    if (n == name) return w.owned.emplace_back(layer.parameter(name)).data();  // a moved vector keeps its buffer
  return nullptr;
}

Weights weights_of(const MultiheadAttention& layer) {
  const Config& c = layer.config();
  Weights w{};
  auto get = [&](const char* name) { return optional(w, layer, name); };
  if (c.names == WeightNames::hf) {
    w.wq = get("q_proj.weight"), w.wk = get("k_proj.weight"), w.wv = get("v_proj.weight");
    w.wo = get("o_proj.weight"), w.bq = get("q_proj.bias"), w.bk = get("k_proj.bias");
    w.bv = get("v_proj.bias"), w.bo = get("o_proj.bias"), w.q_norm = get("q_norm.weight");
    w.k_norm = get("k_norm.weight"), w.sinks = get("sinks");
    return w;
  }
  const std::size_t E = std::size_t(c.embed_dim);
  const float* in = get("in_proj_weight");
  const float* b = get("in_proj_bias");
  w.wq = in ? in : get("q_proj_weight");
  w.wk = in ? in + E * E : get("k_proj_weight");
  w.wv = in ? in + 2 * E * E : get("v_proj_weight");
  w.wo = get("out_proj.weight");
  w.bq = b, w.bk = b ? b + E : nullptr, w.bv = b ? b + 2 * E : nullptr;
  w.bo = get("out_proj.bias");
  w.q_norm = w.k_norm = w.sinks = nullptr;
  return w;
}

// RMSNorm then the rotation of one head's features at `position`, in double.
void norm_and_rotate(double* x, std::size_t d, const float* norm, double eps, const Config& c,
                     const std::vector<double>& inv_freq, std::int64_t position) {
  if (norm) {
    double ms = 0;
    for (std::size_t t = 0; t < d; ++t) ms += x[t] * x[t];
    const double inv = 1.0 / std::sqrt(ms / double(d) + eps);
    for (std::size_t t = 0; t < d; ++t) x[t] = x[t] * inv * norm[t];
  }
  const std::size_t half = std::size_t(c.rope.dim / 2);
  for (std::size_t t = 0; t < half; ++t) {
    const double a = double(position) * inv_freq[t];
    const double cs = std::cos(a) * c.rope.attention_factor, sn = std::sin(a) * c.rope.attention_factor;
    const std::size_t i = c.rope.layout == Rope::Layout::half ? t : 2 * t;
    const std::size_t j = c.rope.layout == Rope::Layout::half ? t + half : 2 * t + 1;
    const double u = x[i], v = x[j];
    x[i] = u * cs - v * sn;
    x[j] = v * cs + u * sn;
  }
}

// BLOOM's ALiBi slope of head h (0-based) of H.
double alibi_slope(std::int64_t h, std::int64_t heads) {
  std::int64_t n = 1;
  while (n * 2 <= heads) n *= 2;
  if (h < n) return std::pow(2.0, -8.0 * double(h + 1) / double(n));
  return std::pow(2.0, -4.0 * double(2 * (h - n) + 1) / double(n));
}

}  // namespace

void forward(const MultiheadAttention& layer, const ForwardInput& in, const ForwardOptions& o,
             const ForwardOutputs& out) {
  const Config& c = layer.config();
  const std::size_t B = in.batch, Lq = in.query_len, Lk = in.key_len;
  const std::size_t E = c.embed_dim, H = c.num_heads, Hkv = c.num_kv_heads, d = c.head_dim,
                    S = layer.source_len(in.key_len);
  const std::size_t qw = H * d, kvw = Hkv * d, group = H / Hkv;
  const float* key = in.key ? in.key : in.query;
  const float* value = in.value ? in.value : key;
  const std::size_t kdim = c.kdim, vdim = in.value ? c.vdim : kdim;
  Weights w = weights_of(layer);

  Matrix q = linear(in.query, B * Lq, E, w.wq, qw, w.bq);  // [B, Lq, H*d]
  Matrix k = linear(key, B * Lk, kdim, w.wk, kvw, w.bk);    // [B, Lk, Hkv*d]
  Matrix v = linear(value, B * Lk, vdim, w.wv, kvw, w.bv);  // [B, Lk, Hkv*d]
  const float* bias_k = optional(w, layer, "bias_k");
  const float* bias_v = optional(w, layer, "bias_v");

  // Positions: explicit, or 0 .. Lq-1 (+ Lk - Lq bottom-right) and 0 .. Lk-1.
  auto q_pos = [&](std::size_t b, std::size_t i) -> std::int64_t {
    if (o.positions) return o.positions[b * Lq + i];
    return std::int64_t(i) + (o.bottom_right ? std::int64_t(Lk) - std::int64_t(Lq) : 0);
  };
  auto k_pos = [&](std::size_t b, std::size_t j) -> std::int64_t {
    return o.positions ? o.positions[b * Lk + j] : std::int64_t(j);
  };
  // longrope: one choice for the call, by its largest position.
  std::int64_t largest = -1;
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t i = 0; i < Lq; ++i) largest = std::max(largest, q_pos(b, i));
    for (std::size_t j = 0; j < Lk; ++j) largest = std::max(largest, k_pos(b, j));
  }
  const std::vector<double> inv_freq = rope_inverse_frequencies(c.rope, rope_long_context(c.rope, largest));
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t i = 0; i < Lq; ++i)
      for (std::size_t h = 0; h < H; ++h)
        norm_and_rotate(&q[(b * Lq + i) * qw + h * d], d, w.q_norm, c.qk_norm_eps, c, inv_freq, q_pos(b, i));
    for (std::size_t j = 0; j < Lk; ++j)
      for (std::size_t g = 0; g < Hkv; ++g)
        norm_and_rotate(&k[(b * Lk + j) * kvw + g * d], d, w.k_norm, c.qk_norm_eps, c, inv_freq, k_pos(b, j));
  }

  auto key_at = [&](std::size_t b, std::size_t j, std::size_t h, std::size_t t) -> double {
    if (j < Lk) return k[(b * Lk + j) * kvw + (h / group) * d + t];
    if (bias_k && j == Lk) return bias_k[h * d + t];
    return 0.0;  // the zero-attention key
  };
  auto value_at = [&](std::size_t b, std::size_t j, std::size_t h, std::size_t t) -> double {
    if (j < Lk) return v[(b * Lk + j) * kvw + (h / group) * d + t];
    if (bias_v && j == Lk) return bias_v[h * d + t];
    return 0.0;
  };
  const double inf = std::numeric_limits<double>::infinity();
  auto mask_at = [&](std::size_t b, std::size_t h, std::size_t i, std::size_t j) -> double {
    if (j >= Lk) return 0.0;  // extra keys are never masked
    double m = 0.0;
    if (c.alibi) m += alibi_slope(std::int64_t(h), std::int64_t(H)) * double(k_pos(b, j) - q_pos(b, i));
    if (o.attn.present()) {
      const std::size_t first = o.attn_per_head ? (b * H + h) * Lq : o.attn_per_batch ? b * Lq : 0;
      const std::size_t idx = (first + i) * Lk + j;
      m += o.attn.blocked ? (o.attn.blocked[idx] ? -inf : 0.0) : o.attn.additive[idx];
    }
    if (o.key_padding.present()) {
      const std::size_t idx = b * Lk + j;
      m += o.key_padding.blocked ? (o.key_padding.blocked[idx] ? -inf : 0.0) : o.key_padding.additive[idx];
    }
    if (o.is_causal && k_pos(b, j) > q_pos(b, i)) m = -inf;
    if (c.sliding_window > 0 && q_pos(b, i) - k_pos(b, j) >= c.sliding_window) m = -inf;
    if (o.valid_lens) {
      const std::int64_t len = o.valid_lens_per_query ? o.valid_lens[b * Lq + i] : o.valid_lens[b];
      if (std::int64_t(j) >= len) m = -inf;
    }
    return m;
  };
  const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(double(d));

  Matrix concat(B * Lq * qw, 0.0);
  std::vector<double> p(S);
  if (o.need_weights == NeedWeights::average)
    for (std::size_t n = 0; n < B * Lq * S; ++n) out.weights[n] = 0.0f;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < Lq; ++i) {
        double mx = -inf;
        for (std::size_t j = 0; j < S; ++j) {
          double s = 0.0;
          for (std::size_t t = 0; t < d; ++t) s += q[(b * Lq + i) * qw + h * d + t] * key_at(b, j, h, t);
          s *= scale;
          if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
          p[j] = s + mask_at(b, h, i, j);
          if (p[j] > mx || p[j] != p[j]) mx = p[j];  // a NaN score makes the row NaN
        }
        // A sink is one more logit in the softmax, weighting no value: with
        // it no row is fully masked (every key blocked, the sink takes all).
        const double sink = w.sinks ? double(w.sinks[h]) : -inf;
        const bool fully_masked = !w.sinks && S > 0 && std::isinf(mx) && mx < 0;
        if (w.sinks && (sink > mx || mx == -inf)) mx = sink;  // a NaN or +inf score stays
        double sum = w.sinks ? std::exp(sink - mx) : 0.0;
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
          concat[(b * Lq + i) * qw + h * d + t] = z;
          if (out.heads) out.heads[((b * H + h) * Lq + i) * d + t] = float(z);
        }
        for (std::size_t j = 0; j < S; ++j) {
          if (o.need_weights == NeedWeights::per_head)
            out.weights[((b * H + h) * Lq + i) * S + j] = float(p[j]);
          else if (o.need_weights == NeedWeights::average)
            out.weights[(b * Lq + i) * S + j] += float(p[j] / double(H));
        }
      }

  for (std::size_t r = 0; r < B * Lq; ++r) {
    for (std::size_t j = 0; j < E; ++j) {
      double acc = w.bo ? w.bo[j] : 0.0;
      for (std::size_t t = 0; t < qw; ++t) acc += concat[r * qw + t] * double(w.wo[j * qw + t]);
      out.output[r * E + j] = float(acc);
    }
    if (out.concat)
      for (std::size_t t = 0; t < qw; ++t) out.concat[r * qw + t] = float(concat[r * qw + t]);
  }
}

}  // namespace mha::reference
