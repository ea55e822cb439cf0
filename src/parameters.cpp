#include "parameters.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "buffers.hpp"
#include "random.hpp"

namespace mha {
namespace {

std::int64_t product(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

void fill_uniform(std::vector<float>& v, Random& rng, double bound) {
  for (auto& x : v) x = float(rng.uniform(-bound, bound));
}

// Floats of a weight [n, k] packed into panels (pack_weight).
double packed_floats(double n, double k) {
  return std::ceil(n / double(PackedWeight::kPanel)) * double(PackedWeight::kPanel) * k;
}

// Floats of q, k and v packed in the form prepare() makes: one block of
// [Wq; Wk; Wv] rows for fused self-attention, or three.
double packed_projection_floats(const Config& c, bool fused) {
  const double e = double(c.embed_dim), qw = double(c.num_heads * c.head_dim),
               kvw = double(c.num_kv_heads * c.head_dim);
  return fused ? packed_floats(qw + 2 * kvw, e)
               : packed_floats(qw, e) + packed_floats(kvw, double(c.kdim)) + packed_floats(kvw, double(c.vdim));
}

// Doubles: exact to 2^53, and no configuration can overflow them.
std::uint64_t to_bytes(double floats) {
  const double bytes = floats * double(sizeof(float));
  return bytes >= 1.8e19 ? std::numeric_limits<std::uint64_t>::max() : std::uint64_t(bytes);
}

// Which projections have a bias, whatever the names.
Config::Biases biases_of(const Config& c) {
  if (c.names == WeightNames::hf) return c.hf_bias;
  return {c.bias, c.bias, c.bias, c.bias};
}

// The score scale times log2(e), in float: scores come out of Q.K^T in
// the softmax's base-2 units. The default's arithmetic is the first
// round's, so its bits are too.
float scale_of(const Config& c) {
  if (c.scale > 0) return float(c.scale * double(kLog2e));
  return kLog2e / std::sqrt(float(c.head_dim));
}

}  // namespace

// The parameter list, under each kind of names, in the order the library
// that names them lists them.
Parameters::Parameters(const Config& c, std::uint64_t seed)
    : config_(c), has_bias_(biases_of(c)), scale_(scale_of(c)) {
  const std::int64_t e = c.embed_dim, qw = c.num_heads * c.head_dim, kvw = c.num_kv_heads * c.head_dim;
  Random rng(seed);
  if (c.names == WeightNames::hf) {
    // nn.Linear's defaults (kaiming_uniform_(a=sqrt(5)): bound 1/sqrt(fan_in),
    // the bias too) from our own generator; norms start at 1.
    auto linear = [&](const std::string& name, std::int64_t out, std::int64_t in, bool bias) {
      params_.push_back({name + ".weight", {out, in}, {}});
      if (bias) params_.push_back({name + ".bias", {out}, {}});
    };
    linear("q_proj", qw, e, has_bias_.q);
    linear("k_proj", kvw, c.kdim, has_bias_.k);
    linear("v_proj", kvw, c.vdim, has_bias_.v);
    linear("o_proj", e, qw, has_bias_.o);
    if (c.qk_norm_eps > 0) {
      params_.push_back({"q_norm.weight", {c.head_dim}, {}});
      params_.push_back({"k_norm.weight", {c.head_dim}, {}});
    }
    if (c.sinks) params_.push_back({"sinks", {c.num_heads}, {}});
    for (auto& p : params_) {
      p.values.assign(std::size_t(product(p.shape)), p.name == "sinks" ? 0.0f : 1.0f);  // sinks start at 0
      if (p.name.find("_norm.") != std::string::npos || p.name == "sinks") continue;
      const std::int64_t fan_in = p.name.rfind(".bias") != std::string::npos ? get(p.name.substr(0, p.name.size() - 5) + ".weight").shape[1]
                                                                              : p.shape[1];
      fill_uniform(p.values, rng, 1.0 / std::sqrt(double(fan_in)));
    }
    b_o_ = has_bias_.o ? get("o_proj.bias").values.data() : nullptr;
    k_norm_ = c.qk_norm_eps > 0 ? get("k_norm.weight").values.data() : nullptr;
    sinks_ = c.sinks ? get("sinks").values.data() : nullptr;
    store_reduced();
    return;
  }
  const bool same_dims = c.kdim == e && c.vdim == e;  // PyTorch's _qkv_same_embed_dim
  if (same_dims) {
    params_.push_back({"in_proj_weight", {3 * e, e}, {}});
  } else {
    params_.push_back({"q_proj_weight", {e, e}, {}});
    params_.push_back({"k_proj_weight", {e, c.kdim}, {}});
    params_.push_back({"v_proj_weight", {e, c.vdim}, {}});
  }
  if (c.bias) params_.push_back({"in_proj_bias", {3 * e}, {}});
  if (c.add_bias_kv) {
    params_.push_back({"bias_k", {1, 1, e}, {}});
    params_.push_back({"bias_v", {1, 1, e}, {}});
  }
  params_.push_back({"out_proj.weight", {e, e}, {}});
  if (c.bias) params_.push_back({"out_proj.bias", {e}, {}});
  for (auto& p : params_) p.values.assign(std::size_t(product(p.shape)), 0.0f);

  // nn.MultiheadAttention._reset_parameters, in its order, from our own
  // generator (PyTorch's RNG stream is not reproduced; the distributions are).
  if (same_dims) {
    // xavier_uniform_ on [3E, E]: fan_in = E, fan_out = 3E.
    fill_uniform(find_mutable("in_proj_weight")->values, rng, std::sqrt(6.0 / double(4 * e)));
  } else {
    fill_uniform(find_mutable("q_proj_weight")->values, rng, std::sqrt(6.0 / double(e + e)));
    fill_uniform(find_mutable("k_proj_weight")->values, rng, std::sqrt(6.0 / double(e + c.kdim)));
    fill_uniform(find_mutable("v_proj_weight")->values, rng, std::sqrt(6.0 / double(e + c.vdim)));
  }
  // out_proj is an nn.Linear: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in).
  fill_uniform(find_mutable("out_proj.weight")->values, rng, 1.0 / std::sqrt(double(e)));
  if (c.add_bias_kv) {
    // xavier_normal_ on [1, 1, E]: fan_in = fan_out = E, std = sqrt(2 / 2E).
    const double std_dev = std::sqrt(1.0 / double(e));
    for (const char* name : {"bias_k", "bias_v"})
      for (auto& x : find_mutable(name)->values) x = float(rng.normal() * std_dev);
  }
  // in_proj_bias and out_proj.bias stay 0, as PyTorch sets them.
  if (const Parameter* b = find("out_proj.bias")) b_o_ = b->values.data();
  if (const Parameter* b = find("bias_k")) bias_k_ = b->values.data();
  if (const Parameter* b = find("bias_v")) bias_v_ = b->values.data();
  store_reduced();
}

std::vector<const PackedWeight*> Parameters::reduced_parts(std::string_view name) const {
  if (!reduced()) return {};
  if (name == "in_proj_weight") return {&packed_q_, &packed_k_, &packed_v_};
  if (name == "q_proj.weight" || name == "q_proj_weight") return {&packed_q_};
  if (name == "k_proj.weight" || name == "k_proj_weight") return {&packed_k_};
  if (name == "v_proj.weight" || name == "v_proj_weight") return {&packed_v_};
  if (name == "o_proj.weight" || name == "out_proj.weight") return {&packed_o_};
  return {};
}

std::vector<PackedWeight*> Parameters::reduced_parts(std::string_view name) {
  std::vector<PackedWeight*> parts;
  for (const PackedWeight* w : static_cast<const Parameters*>(this)->reduced_parts(name))
    parts.push_back(const_cast<PackedWeight*>(w));
  return parts;
}

void Parameters::store_reduced() {
  for (auto& p : params_) {
    if (reduced_parts(p.name).empty()) continue;
    set(p.name, p.values.data(), p.values.size());
    std::vector<float>().swap(p.values);
  }
}

std::uint64_t MultiheadAttention::layer_bytes(const Config& c) {
  const double e = double(c.embed_dim), qw = double(c.num_heads * c.head_dim),
               kvw = double(c.num_kv_heads * c.head_dim), d = double(c.head_dim);
  const double others = 2 * qw + 2 * kvw + 2 * e + (c.add_bias_kv ? 2 * e : 0) + (c.qk_norm_eps > 0 ? 3 * d : 0) +
                        (c.sinks ? double(c.num_heads) : 0);
  if (c.weights != WeightFormat::f32) {  // the weights only in their packed, reduced form
    const double packed = packed_bytes(qw, e, c.weights) + packed_bytes(kvw, double(c.kdim), c.weights) +
                          packed_bytes(kvw, double(c.vdim), c.weights) + packed_bytes(e, qw, c.weights);
    return to_bytes(others + qw + 2 * kvw) + to_bytes(packed / double(sizeof(float)));
  }
  const double params = qw * e + kvw * double(c.kdim + c.vdim) + e * qw + others;
  // Packed: the output projection, the scaled biases, and the projections
  // in the form self-attention reads (Parameters::prepare).
  const double packed = packed_floats(e, qw) + qw + 2 * kvw +
                        packed_projection_floats(c, c.kdim == c.embed_dim && c.vdim == c.embed_dim);
  return to_bytes(params + packed);
}

std::uint64_t Parameters::bytes() const {
  std::uint64_t total = (b_qkv_.size() + q_norm_.size()) * sizeof(float);
  for (const auto& p : params_) total += p.values.size() * sizeof(float);
  for (const PackedWeight* w : {&packed_q_, &packed_k_, &packed_v_, &packed_qkv_, &packed_o_}) total += w->bytes();
  return total;
}

std::vector<float> Parameters::values(std::string_view name) const {
  const Parameter& p = get(name);
  const auto parts = reduced_parts(p.name);
  if (parts.empty()) return p.values;
  std::vector<float> out(std::size_t(product(p.shape)));
  float* at = out.data();
  for (const PackedWeight* w : parts) {
    unpack_weight(*w, at);
    at += w->n * w->k;
  }
  return out;
}

std::uint64_t Parameters::prepare_bytes(bool fused_self_attention) const {
  if (reduced()) return stale_ ? to_bytes(double(q_width() + 2 * kv_width() + std::size_t(config_.head_dim))) : 0;
  const double form = packed_projection_floats(config_, fused_self_attention);
  if (stale_) {
    const double e = double(config_.embed_dim), qw = double(q_width()), kvw = double(kv_width());
    return to_bytes(packed_floats(e, qw) + qw + 2 * kvw + double(config_.head_dim) + form);
  }
  return (fused_self_attention ? qkv_ready_ : separate_ready_) ? 0 : to_bytes(form);
}

Parameters::Projections Parameters::projections() const {
  auto data = [&](const char* name) { const Parameter* p = find(name); return p ? p->values.data() : nullptr; };
  if (config_.names == WeightNames::hf)
    return {data("q_proj.weight"), data("k_proj.weight"), data("v_proj.weight"), data("o_proj.weight"),
            data("q_proj.bias"),   data("k_proj.bias"),   data("v_proj.bias"),   data("o_proj.bias")};
  const std::size_t e = std::size_t(config_.embed_dim);
  const float* in = data("in_proj_weight");  // [3E, E]: rows of q, then k, then v
  const float* b = data("in_proj_bias");
  return {in ? in : data("q_proj_weight"), in ? in + e * e : data("k_proj_weight"),
          in ? in + 2 * e * e : data("v_proj_weight"), data("out_proj.weight"),
          b, b ? b + e : nullptr, b ? b + 2 * e : nullptr, data("out_proj.bias")};
}

const Parameter& Parameters::get(std::string_view name) const {
  if (const Parameter* p = find(name)) return *p;
  std::string known;
  for (const auto& q : params_) known += (known.empty() ? "" : ", ") + q.name;
  throw Error(Error::Kind::range,
              "parameter '" + std::string(name) + "' does not exist in this layer; expected one of " + known);
}

const Parameter* Parameters::find(std::string_view name) const {
  for (const auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

Parameter* Parameters::find_mutable(std::string_view name) {
  return const_cast<Parameter*>(static_cast<const Parameters*>(this)->find(name));
}

void Parameters::check(const std::string& name, const float* data, std::size_t count) const {
  const Parameter& p = get(name);
  const std::size_t size = std::size_t(product(p.shape));
  if (count != size)
    throw Error(Error::Kind::range, "parameter '" + name + "' must have " + std::to_string(size) + " values (shape " +
                                        shape_string(p.shape) + "), got " + std::to_string(count));
  if (count > 0 && data == nullptr)
    throw Error(Error::Kind::type, "parameter '" + name + "': data is null");
  if (reduced_parts(p.name).empty()) return;
  const WeightFormat format = config_.weights;
  if (const std::size_t bad = first_unstorable(data, count, format); bad < count)
    throw Error(Error::Kind::range,
                "parameter '" + name + "' value " + std::to_string(bad) + " (" + std::to_string(data[bad]) + ") " +
                    (format == WeightFormat::f16 ? "is beyond float16's range (|w| <= 65504); weightDtype 'f16' stores finite weights only"
                                                 : "is not finite; weightDtype 'int8' quantizes finite weights only"));
}

void Parameters::set(const std::string& name, const float* data, std::size_t count) {
  check(name, data, count);
  Parameter* p = find_mutable(name);
  const auto parts = reduced_parts(p->name);
  if (parts.empty()) {
    std::copy(data, data + count, p->values.begin());
    stale_ = true;
    return;
  }
  const WeightFormat format = config_.weights;
  // Rows in order: torch's in_proj_weight is q's rows, then k's, then v's.
  const std::size_t k = std::size_t(p->shape[1]);
  std::size_t row = 0;
  for (PackedWeight* w : parts) {
    const std::size_t rows = w == &packed_q_ ? q_width() : w == &packed_o_ ? std::size_t(config_.embed_dim) : kv_width();
    *w = pack_reduced(data + row * k, rows, k, format);
    row += rows;
  }
  stale_ = true;
}

void Parameters::prepare(bool fused_self_attention) {
  const std::size_t e = std::size_t(config_.embed_dim), qw = q_width(), kvw = kv_width();
  const Projections w = projections();
  const bool norm = config_.qk_norm_eps > 0;
  if (stale_) {  // a parameter changed: everything derived is rebuilt on demand
    if (!reduced()) packed_o_ = pack_weight(w.wo, e, qw);
    b_qkv_.clear();
    if (w.bq || w.bk || w.bv) {
      b_qkv_.assign(qw + 2 * kvw, 0.0f);
      if (w.bq) std::copy(w.bq, w.bq + qw, b_qkv_.begin());
      if (w.bk) std::copy(w.bk, w.bk + kvw, b_qkv_.begin() + std::ptrdiff_t(qw));
      if (w.bv) std::copy(w.bv, w.bv + kvw, b_qkv_.begin() + std::ptrdiff_t(qw + kvw));
      if (!norm && !reduced())  // else q is scaled after its projection (q_post_scale)
        for (std::size_t i = 0; i < qw; ++i) b_qkv_[i] *= scale_;
    }
    q_norm_.clear();
    if (norm) {  // QK-norm would undo a scale folded into Wq: fold it into q_norm
      const Parameter& qn = get("q_norm.weight");
      q_norm_.resize(qn.values.size());
      for (std::size_t i = 0; i < q_norm_.size(); ++i) q_norm_[i] = qn.values[i] * scale_;
    }
    qkv_ready_ = separate_ready_ = stale_ = false;
    if (reduced()) {  // packed once, when set
      separate_ready_ = true;
      return;
    }
    packed_qkv_ = packed_q_ = packed_k_ = packed_v_ = PackedWeight{};
  }
  // Only the form this call reads is packed: fused self-attention never
  // needs the separate copies, and vice versa.
  bool& ready = fused_self_attention ? qkv_ready_ : separate_ready_;
  if (ready) return;

  // Packed straight from the parameters (no float32 copy of the weights on
  // the way), then q's columns scaled: the same products, so the same bits.
  const float q_scale = norm ? 1.0f : scale_;
  auto scale_first_columns = [&](PackedWeight& p, std::size_t columns) {  // W's first rows, as panel columns
    constexpr std::size_t P = PackedWeight::kPanel;
    if (q_scale == 1.0f) return;
    for (std::size_t j = 0; j < columns; ++j)
      for (std::size_t kk = 0; kk < p.k; ++kk) p.data[(j / P) * p.k * P + kk * P + j % P] *= q_scale;
  };
  const std::size_t kd = std::size_t(config_.kdim), vd = std::size_t(config_.vdim);
  if (fused_self_attention) {  // [Wq * scale; Wk; Wv] as one [H*d + 2*Hkv*d, E] block
    if (w.wk == w.wq + qw * e && w.wv == w.wk + kvw * e) {  // already one block (in_proj_weight)
      packed_qkv_ = pack_weight(w.wq, qw + 2 * kvw, e);
    } else {
      std::vector<const float*> rows;
      rows.reserve(qw + 2 * kvw);
      for (std::size_t i = 0; i < qw; ++i) rows.push_back(w.wq + i * e);
      for (std::size_t i = 0; i < kvw; ++i) rows.push_back(w.wk + i * e);
      for (std::size_t i = 0; i < kvw; ++i) rows.push_back(w.wv + i * e);
      packed_qkv_ = pack_weight_rows(rows, e);
    }
    scale_first_columns(packed_qkv_, qw);
  } else {
    packed_q_ = pack_weight(w.wq, qw, e);
    scale_first_columns(packed_q_, qw);
    packed_k_ = pack_weight(w.wk, kvw, kd);
    packed_v_ = pack_weight(w.wv, kvw, vd);
  }
  ready = true;
}

}  // namespace mha
