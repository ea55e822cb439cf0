// The layer's learnable tensors under PyTorch's state_dict names, their
// PyTorch-style initialisation, and the GEMM-packed copies derived from them.
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
  // nullptr when this configuration has no such parameter. A string_view,
  // so that looking up a literal allocates nothing (libc++'s wasm32
  // std::string keeps only 10 characters inline; fuses_qkv runs per call).
  const Parameter* find(std::string_view name) const;
  // The named parameter, or Error naming the ones there are.
  const Parameter& get(std::string_view name) const;
  void set(const std::string& name, const float* data, std::size_t count);

  // Derived data the forward pass reads, rebuilt after any set() by
  // prepare() (once per change, not per call). log2(e)/sqrt(d) is folded
  // into the query projection, so scores come out of the Q.K^T GEMM already
  // scaled, in the softmax's base-2 units (kLog2e).
  // `fused_self_attention` (see fuses_qkv) packs [Wq; Wk; Wv] as one
  // [3E, E] GEMM; otherwise the three are packed separately (cross-attention,
  // or kdim/vdim != E). Each form is packed the first time a call needs it.
  void prepare(bool fused_self_attention);
  // Bytes prepare(fused_self_attention) would allocate now.
  std::uint64_t prepare_bytes(bool fused_self_attention) const;
  bool fuses_qkv() const { return find("in_proj_weight") != nullptr; }
  const PackedWeight& packed_q() const { return packed_q_; }
  const PackedWeight& packed_k() const { return packed_k_; }
  const PackedWeight& packed_v() const { return packed_v_; }
  const PackedWeight& packed_qkv() const { return packed_qkv_; }
  const PackedWeight& packed_o() const { return packed_o_; }
  // [bq log2(e)/sqrt(d), bk, bv] (3E), or nullptr when bias=false; b_q() etc. point into it.
  const float* b_qkv() const { return b_qkv_.empty() ? nullptr : b_qkv_.data(); }
  const float* b_q() const { return b_qkv(); }
  const float* b_k() const { return b_qkv_.empty() ? nullptr : b_qkv_.data() + config_.embed_dim; }
  const float* b_v() const { return b_qkv_.empty() ? nullptr : b_qkv_.data() + 2 * config_.embed_dim; }
  const float* b_o() const { return b_o_; }
  const float* bias_k() const { return bias_k_; }
  const float* bias_v() const { return bias_v_; }

 private:
  Parameter* find_mutable(std::string_view name);

  Config config_;
  std::vector<Parameter> params_;
  bool stale_ = true;  // a parameter changed since the last prepare()
  bool qkv_ready_ = false, separate_ready_ = false;
  const float *b_o_ = nullptr, *bias_k_ = nullptr, *bias_v_ = nullptr;
  std::vector<float> b_qkv_;
  PackedWeight packed_q_, packed_k_, packed_v_, packed_qkv_, packed_o_;
};

}  // namespace mha
