// The layer's learnable tensors under their state_dict names (PyTorch's
// nn.MultiheadAttention or Hugging Face's, Config::names), their
// initialisation, and the GEMM-packed copies derived from them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels.hpp"
#include "mha.hpp"

namespace mha {

struct Parameter {
  std::string name;                 // state_dict key, e.g. "in_proj_weight"
  std::vector<std::int64_t> shape;  // its shape under that name
  std::vector<float> values;        // row-major
};

class Parameters {
 public:
  // `config` must already be validated and resolved (kdim, vdim,
  // num_kv_heads and head_dim set).
  Parameters(const Config& config, std::uint64_t seed);
  // The views below point into params_: a copy would point into the original.
  Parameters(const Parameters&) = delete;
  Parameters& operator=(const Parameters&) = delete;

  const std::vector<Parameter>& all() const { return params_; }
  // nullptr when this configuration has no such parameter. A string_view,
  // so that looking up a literal allocates nothing (libc++'s wasm32
  // std::string keeps only 10 characters inline).
  const Parameter* find(std::string_view name) const;
  // The named parameter, or Error naming the ones there are. A reduced
  // weight's `values` are empty: its packed form is where it lives.
  const Parameter& get(std::string_view name) const;
  // The named parameter's values, a reduced weight's dequantized.
  std::vector<float> values(std::string_view name) const;
  // Throws Error when count is not the parameter's size, or when a value
  // cannot be stored in the layer's weight format; check() only checks.
  void check(const std::string& name, const float* data, std::size_t count) const;
  void set(const std::string& name, const float* data, std::size_t count);
  // Bytes the parameters and everything derived from them hold now.
  std::uint64_t bytes() const;

  // Derived data the forward pass reads, rebuilt after any set() by
  // prepare() (once per change, not per call). The score scale times
  // log2(e) is folded into the query projection, so scores come out of the
  // Q.K^T GEMM already scaled, in the softmax's base-2 units (kLog2e); with
  // QK-norm, which would undo that, it is folded into q_norm instead.
  // `fused_self_attention` (see fuses_qkv) packs [Wq; Wk; Wv] as one GEMM;
  // otherwise the three are packed separately (cross-attention, or kdim/vdim
  // != E). Each form is packed the first time a call needs it.
  void prepare(bool fused_self_attention);
  // Bytes prepare(fused_self_attention) would allocate now.
  std::uint64_t prepare_bytes(bool fused_self_attention) const;
  // Whether self-attention can run the three projections as one GEMM
  // (reduced weights are stored packed one projection each).
  bool fuses_qkv() const {
    return config_.kdim == config_.embed_dim && config_.vdim == config_.embed_dim && !reduced();
  }
  // Projection weights stored in a reduced format, packed once when set.
  bool reduced() const { return config_.weights != WeightFormat::f32; }
  // What q must be multiplied by after its projection: the score scale
  // (times log2(e)) when it could not be folded into Wq (reduced weights
  // would round it) nor into q_norm; else 1.
  float q_post_scale() const { return reduced() && config_.qk_norm_eps <= 0 ? scale_ : 1.0f; }
  const PackedWeight& packed_q() const { return packed_q_; }
  const PackedWeight& packed_k() const { return packed_k_; }
  const PackedWeight& packed_v() const { return packed_v_; }
  const PackedWeight& packed_qkv() const { return packed_qkv_; }
  const PackedWeight& packed_o() const { return packed_o_; }
  // [bq * scale, bk, bv] (H*d + 2*Hkv*d, 0 where a projection has none), or
  // nullptr when no projection has a bias; b_q() etc. point into it, or are
  // nullptr for a projection without one.
  const float* b_qkv() const { return b_qkv_.empty() ? nullptr : b_qkv_.data(); }
  const float* b_q() const { return has_bias_.q ? b_qkv() : nullptr; }
  const float* b_k() const { return has_bias_.k ? b_qkv() + q_width() : nullptr; }
  const float* b_v() const { return has_bias_.v ? b_qkv() + q_width() + kv_width() : nullptr; }
  const float* b_o() const { return b_o_; }
  const float* bias_k() const { return bias_k_; }
  const float* bias_v() const { return bias_v_; }
  // QK-norm weights [d] (q_norm's times the score scale), or nullptr.
  const float* q_norm() const { return q_norm_.empty() ? nullptr : q_norm_.data(); }
  const float* k_norm() const { return k_norm_; }
  // The sink logits [H] (Config::sinks), as given, or nullptr.
  const float* sinks() const { return sinks_; }

 private:
  // Where the projections' weights and biases are, whatever their names.
  struct Projections {
    const float *wq, *wk, *wv, *wo, *bq, *bk, *bv, *bo;
  };
  Projections projections() const;
  std::size_t q_width() const { return std::size_t(config_.num_heads * config_.head_dim); }
  std::size_t kv_width() const { return std::size_t(config_.num_kv_heads * config_.head_dim); }
  Parameter* find_mutable(std::string_view name);
  // The packed weights a reduced parameter lives in, in row order (torch's
  // in_proj_weight is q's, k's and v's); empty for any other parameter.
  std::vector<PackedWeight*> reduced_parts(std::string_view name);
  std::vector<const PackedWeight*> reduced_parts(std::string_view name) const;
  // Moves each reduced weight's values into its packed form.
  void store_reduced();

  Config config_;
  Config::Biases has_bias_;  // which projections have one, under either names
  float scale_;              // the score scale times log2(e)
  std::vector<Parameter> params_;
  bool stale_ = true;  // a parameter changed since the last prepare()
  bool qkv_ready_ = false, separate_ready_ = false;
  const float *b_o_ = nullptr, *bias_k_ = nullptr, *bias_v_ = nullptr, *k_norm_ = nullptr, *sinks_ = nullptr;
  std::vector<float> b_qkv_, q_norm_;
  PackedWeight packed_q_, packed_k_, packed_v_, packed_qkv_, packed_o_;
};

}  // namespace mha
