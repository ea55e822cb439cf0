// The layer's learnable tensors under PyTorch's state_dict names, their
// PyTorch-style initialisation, and the GEMM-packed copies derived from them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "mha.hpp"

namespace mha {

struct Parameter {
  std::string name;                 // state_dict key, e.g. "in_proj_weight"
  std::vector<std::int64_t> shape;  // PyTorch's shape
  std::vector<float> values;        // row-major
};

class Parameters {
 public:
  // `config` must already be validated and resolved (kdim/vdim set).
  Parameters(const Config& config, std::uint64_t seed);
  // The views below point into params_: a copy would point into the original.
  Parameters(const Parameters&) = delete;
  Parameters& operator=(const Parameters&) = delete;

  const std::vector<Parameter>& all() const { return params_; }
  // nullptr when this configuration has no such parameter.
  const Parameter* find(const std::string& name) const;
  void set(const std::string& name, const float* data, std::size_t count);

  // Views the forward pass reads. Projection weights are [E, in] row-major;
  // biases are nullptr when bias=false, bias_k/bias_v nullptr without add_bias_kv.
  const float* w_q() const { return w_q_; }
  const float* w_k() const { return w_k_; }
  const float* w_v() const { return w_v_; }
  const float* b_q() const { return b_q_; }
  const float* b_k() const { return b_k_; }
  const float* b_v() const { return b_v_; }
  const float* w_o() const { return find("out_proj.weight")->values.data(); }
  const float* b_o() const { return b_o_; }
  const float* bias_k() const { return bias_k_; }
  const float* bias_v() const { return bias_v_; }

  // Packed for simd::linear; refreshed whenever the weight behind them is set.
  const PackedWeight& packed_q() const { return packed_q_; }
  const PackedWeight& packed_k() const { return packed_k_; }
  const PackedWeight& packed_v() const { return packed_v_; }
  const PackedWeight& packed_o() const { return packed_o_; }

 private:
  Parameter* find_mutable(const std::string& name);
  void bind_views();
  void repack(const std::string& name);

  Config config_;
  std::vector<Parameter> params_;
  const float *w_q_ = nullptr, *w_k_ = nullptr, *w_v_ = nullptr;
  const float *b_q_ = nullptr, *b_k_ = nullptr, *b_v_ = nullptr, *b_o_ = nullptr;
  const float *bias_k_ = nullptr, *bias_v_ = nullptr;
  PackedWeight packed_q_, packed_k_, packed_v_, packed_o_;
};

}  // namespace mha
