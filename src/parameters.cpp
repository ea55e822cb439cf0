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

// Floats of q, k and v packed in the form prepare() makes: one [3E, E]
// block for fused self-attention, or three.
double packed_projection_floats(double e, double kd, double vd, bool fused) {
  return fused ? packed_floats(3 * e, e) : packed_floats(e, e) + packed_floats(e, kd) + packed_floats(e, vd);
}

// Doubles: exact to 2^53, and no configuration can overflow them.
std::uint64_t to_bytes(double floats) {
  const double bytes = floats * double(sizeof(float));
  return bytes >= 1.8e19 ? std::numeric_limits<std::uint64_t>::max() : std::uint64_t(bytes);
}

}  // namespace

Parameters::Parameters(const Config& c, std::uint64_t seed) : config_(c) {
  const std::int64_t e = c.embed_dim;
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
  Random rng(seed);
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
}

std::uint64_t MultiheadAttention::layer_bytes(const Config& c) {
  const double e = double(c.embed_dim), kd = double(c.kdim ? c.kdim : c.embed_dim),
               vd = double(c.vdim ? c.vdim : c.embed_dim);
  const bool same_dims = kd == e && vd == e;
  const double params = e * (e + kd + vd) + e * e + (c.bias ? 4 * e : 0) + (c.add_bias_kv ? 2 * e : 0);
  // Packed: out_proj, the scaled biases, and the projections in the form
  // self-attention reads (Parameters::prepare).
  const double packed = packed_floats(e, e) + 3 * e + packed_projection_floats(e, kd, vd, same_dims);
  return to_bytes(params + packed);
}

std::uint64_t Parameters::prepare_bytes(bool fused_self_attention) const {
  const double e = double(config_.embed_dim), kd = double(config_.kdim), vd = double(config_.vdim);
  const double form = packed_projection_floats(e, kd, vd, fused_self_attention);
  if (stale_) return to_bytes(packed_floats(e, e) + 3 * e + form);
  return (fused_self_attention ? qkv_ready_ : separate_ready_) ? 0 : to_bytes(form);
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

void Parameters::set(const std::string& name, const float* data, std::size_t count) {
  Parameter* p = find_mutable(get(name).name);
  if (count != p->values.size())
    throw Error(Error::Kind::range, "parameter '" + name + "' must have " +
                                        std::to_string(p->values.size()) + " values (shape " +
                                        shape_string(p->shape) + "), got " + std::to_string(count));
  if (count > 0 && data == nullptr)
    throw Error(Error::Kind::type, "parameter '" + name + "': data is null");
  std::copy(data, data + count, p->values.begin());
  stale_ = true;
}

void Parameters::prepare(bool fused_self_attention) {
  const std::size_t e = std::size_t(config_.embed_dim);
  // Scores come out in base-2 units, s * log2(e) / sqrt(d): see kLog2e.
  const float scale = kLog2e / std::sqrt(float(config_.embed_dim / config_.num_heads));
  if (stale_) {  // a parameter changed: everything derived is rebuilt on demand
    packed_o_ = pack_weight(find("out_proj.weight")->values.data(), e, e);
    b_qkv_.clear();
    if (const Parameter* b = find("in_proj_bias")) {
      b_qkv_ = b->values;
      for (std::size_t i = 0; i < e; ++i) b_qkv_[i] *= scale;
    }
    packed_qkv_ = packed_q_ = packed_k_ = packed_v_ = PackedWeight{};
    qkv_ready_ = separate_ready_ = stale_ = false;
  }
  // Only the form this call reads is packed: self-attention with
  // in_proj_weight never needs the separate copies, and vice versa.
  bool& ready = fused_self_attention ? qkv_ready_ : separate_ready_;
  if (ready) return;

  // Packed straight from the parameters (no float32 copy of the weights on
  // the way), then q's columns scaled: the same products, so the same bits.
  const std::size_t kd = std::size_t(config_.kdim), vd = std::size_t(config_.vdim);
  const Parameter* in = find("in_proj_weight");  // [3E, E]: rows of q, then k, then v
  const float* w_q = in ? in->values.data() : find("q_proj_weight")->values.data();
  const float* w_k = in ? w_q + e * e : find("k_proj_weight")->values.data();
  const float* w_v = in ? w_q + 2 * e * e : find("v_proj_weight")->values.data();
  auto scale_first_columns = [&](PackedWeight& w, std::size_t columns) {  // W's first rows, as panel columns
    constexpr std::size_t P = PackedWeight::kPanel;
    for (std::size_t j = 0; j < columns; ++j)
      for (std::size_t kk = 0; kk < w.k; ++kk) w.data[(j / P) * w.k * P + kk * P + j % P] *= scale;
  };
  if (fused_self_attention) {  // [Wq log2(e)/sqrt(d); Wk; Wv] as one [3E, E] block
    packed_qkv_ = pack_weight(w_q, 3 * e, e);
    scale_first_columns(packed_qkv_, e);
  } else {
    packed_q_ = pack_weight(w_q, e, e);
    scale_first_columns(packed_q_, e);
    packed_k_ = pack_weight(w_k, e, kd);
    packed_v_ = pack_weight(w_v, e, vd);
  }
  ready = true;
}

}  // namespace mha
