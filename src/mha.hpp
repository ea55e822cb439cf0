// mha-wasm: multi-head attention as torch.nn.MultiheadAttention computes it at
// inference ("Attention Is All You Need", Vaswani et al. 2017, section 3.2.2).
//
// The one public C++ header. No SIMD type appears here; the kernels live in
// kernels.hpp and are an implementation detail.
//
// Layout, written once: batch-first, row-major, float32.
//
//   tensor          shape                          notes
//   query           [B, Lq, E]
//   key             [B, Lk, kdim]                  nullptr: the query
//   value           [B, Lk, vdim]                  nullptr: the key
//   key_padding     [B, Lk]                        blocked (nonzero = ignore key) or additive
//   attn            [Lq, Lk] or [B*H, Lq, Lk]      index b*H + h; blocked or additive
//   valid_lens      [B] or [B, Lq]                 d2l.ai: key j is blocked when j >= len
//   output          [B, Lq, E]
//   weights         [B, Lq, S] or [B, H, Lq, S]    averaged over heads, or per head
//   heads           [B, H, Lq, d]                  d = E / H; Z_i of the paper
//   concat          [B, Lq, E]                     Concat(Z_1 .. Z_H), head h at columns h*d ..
//
//   S = Lk + add_bias_kv + add_zero_attn: the bias_k/bias_v row and the all-zero
//   row are extra keys that no mask ever blocks (PyTorch pads its masks with 0).
//
// Parameters use PyTorch's state_dict names and layouts (see parameter_names()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "weight_formats.hpp"

namespace mha {

// The one error type of the project. `kind` tells the JS wrapper which JS
// error class to raise; the message names the argument, the expected and the
// actual value.
class Error : public std::runtime_error {
 public:
  enum class Kind { type, range };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// The names the layer's parameters go by: nn.MultiheadAttention's
// state_dict (in_proj_weight, out_proj.weight, ...), or Hugging Face's
// (q_proj.weight, k_proj.weight, v_proj.weight, o_proj.weight, q_norm.weight ...).
enum class WeightNames { torch, hf };

// Rotary position embedding (RoFormer, Su et al. 2021), as Hugging Face
// applies it; see shared/DECODER_ATTENTION.md. Angles in double precision.
struct Rope {
  enum class Layout { half, interleaved };  // pairs (x[t], x[t + r/2]) or (x[2t], x[2t+1])
  enum class Scaling { none, linear, llama3, yarn, longrope };
  std::int64_t dim = 0;  // r, even, <= head_dim; 0 = no RoPE
  double base = 10000.0;
  Layout layout = Layout::half;
  Scaling scaling = Scaling::none;
  double factor = 1.0;                   // linear, llama3, yarn (longrope: unused here; index.js derives
                                         // its default attention factor from it)
  double low_freq_factor = 1.0;          // llama3
  double high_freq_factor = 4.0;         // llama3
  double original_max_positions = 8192;  // llama3, yarn, longrope
  double beta_fast = 32, beta_slow = 1;  // yarn
  bool truncate = true;                  // yarn
  std::vector<double> short_factor, long_factor;  // longrope: r/2 each
  // yarn and longrope: cos and sin are multiplied by it (the scalings'
  // "attention factor"; 1 for the others). The JS API fills in Hugging
  // Face's default (bindings/layer_config.js); here it is given.
  double attention_factor = 1.0;
};

// The layer's hyper-parameters: nn.MultiheadAttention's constructor's, then
// those of today's decoder attention (Llama, Qwen, Mistral, Gemma, Phi, ...).
struct Config {
  std::int64_t embed_dim = 0;   // E
  std::int64_t num_heads = 0;   // H; E % H == 0 unless head_dim is given
  std::int64_t kdim = 0;        // 0 means embed_dim
  std::int64_t vdim = 0;        // 0 means embed_dim
  bool bias = true;             // torch names: in_proj_bias and out_proj.bias exist
  bool add_bias_kv = false;     // bias_k and bias_v exist; one extra key (torch names only)
  bool add_zero_attn = false;   // one extra all-zero key per head (torch names only)

  WeightNames names = WeightNames::torch;
  std::int64_t num_kv_heads = 0;  // Hkv, H % Hkv == 0; 0 means num_heads
  std::int64_t head_dim = 0;      // d; 0 means embed_dim / num_heads
  // Hugging Face names: which projections have a bias (Qwen2: q, k, v;
  // Whisper: q, v, o). `bias` is not used then.
  struct Biases {
    bool q = true, k = true, v = true, o = true;
  } hf_bias;
  Rope rope;
  double scale = 0;          // scores are scale * q.k; 0 means 1/sqrt(d)
  double softcap = 0;        // c: scores become c * tanh(s / c); 0 = none (Gemma 2)
  bool alibi = false;        // BLOOM's slopes, any head count
  std::int64_t sliding_window = 0;  // W keys counting the query itself; 0 = none
  double qk_norm_eps = 0;    // RMSNorm of q and k per head with q_norm/k_norm (Qwen3); 0 = none
  // A learned logit per query head (the `sinks` parameter, GPT-OSS) joins
  // each row's softmax as one more column that no value is weighted by:
  // weights = exp(s_j) / (sum_k exp(s_k) + exp(sink)). A row whose every key
  // is blocked gives weights and output 0 (the sink takes all of it).
  bool sinks = false;
  // How the projection weights are stored (weight_formats.hpp): float32, or
  // f16, bf16 or int8, read by the GEMM as they are, never widened in memory.
  WeightFormat weights = WeightFormat::f32;
};

// A mask given either as booleans (nonzero = blocked, as nn.MultiheadAttention)
// or as floats added to the scaled scores. At most one of the two is set.
struct Mask {
  const std::uint8_t* blocked = nullptr;
  const float* additive = nullptr;
  bool present() const { return blocked != nullptr || additive != nullptr; }
};

enum class NeedWeights { none, average, per_head };

// What a row whose every key is blocked yields. PyTorch 1.13 returns NaN there;
// `zero` (the default) gives weights 0 and a head output of 0 instead.
enum class FullyMaskedRows { zero, nan };

class KVCache;
class MultiheadAttention;

struct ForwardInput {
  std::int64_t batch = 0;      // B
  std::int64_t query_len = 0;  // Lq
  std::int64_t key_len = 0;    // Lk; must equal Lq when key is nullptr (and with cache or memory)
  const float* query = nullptr;
  const float* key = nullptr;
  const float* value = nullptr;
  // Self-attention with a key/value cache: the call's keys and values are
  // appended, and the queries attend over every key the cache holds.
  KVCache* cache = nullptr;
  // Cross-attention over an encoder memory projected by project_memory.
  const KVCache* memory = nullptr;
};

struct ForwardOptions {
  Mask key_padding;                        // [B, Lk]
  Mask attn;                               // [Lq, Lk], or [B*H, Lq, Lk] / [B, Lq, Lk] as below
  bool attn_per_head = false;              // [B*H, Lq, Lk] (= [B, H, Lq, Lk])
  bool attn_per_batch = false;             // [B, Lq, Lk] (Hugging Face's [B, 1, Lq, Lk])
  // Positions of the queries [B, Lq], which RoPE, ALiBi, causal masking and
  // the window use; keys of self-attention are at the same positions. When
  // null, queries are at 0 .. Lq-1 (+ Lk - Lq with bottom_right) and keys
  // at 0 .. Lk-1.
  const std::int32_t* positions = nullptr;
  bool bottom_right = false;               // implicit query positions end with the keys'
  bool is_causal = false;                  // key blocked for a query when its position is after the query's
  const std::int32_t* valid_lens = nullptr;  // [B], or [B, Lq] when valid_lens_per_query
  bool valid_lens_per_query = false;
  NeedWeights need_weights = NeedWeights::none;
  FullyMaskedRows fully_masked_rows = FullyMaskedRows::zero;
};

// Caller-owned destinations; nullptr means "not wanted" (output is required).
struct ForwardOutputs {
  float* output = nullptr;   // [B, Lq, E]
  float* weights = nullptr;  // per ForwardOptions::need_weights
  float* heads = nullptr;    // [B, H, Lq, d]
  float* concat = nullptr;   // [B, Lq, E]
};

// Threads every layer's forward pass uses, the caller included (default 1).
// Clamped to [1, max_threads()]; max_threads() is 1 in a build without threads.
// Results are bit-identical for any thread count.
void set_num_threads(int threads);
int num_threads();
int max_threads();

// Keys (after QK-norm and RoPE) and values of a layer's key/value heads, for
// incremental decoding (shared/DECODER_ATTENTION.md): [B, capacity, Hkv*d]
// each, with every held key's position. A layer with a sliding window of W
// uses it as a ring: it drops keys no later query can see, so a call of Lq
// tokens needs capacity >= W - 1 + Lq. Also holds an encoder memory's keys
// and values (MultiheadAttention::project_memory).
class KVCache {
 public:
  // For `layer` (its Hkv and d), `batch` sequences, up to `capacity` positions.
  KVCache(const MultiheadAttention& layer, std::int64_t batch, std::int64_t capacity);
  ~KVCache();
  KVCache(KVCache&&) noexcept;
  KVCache& operator=(KVCache&&) noexcept;

  std::int64_t batch() const;
  std::int64_t capacity() const;
  // Positions appended since the last reset (P), and how many of the last
  // of them are held (fewer once a ring has dropped some).
  std::int64_t length() const;
  std::int64_t held() const;
  void reset();
  // The state after the first `length` positions (rolling back rejected
  // speculative tokens). Throws Error when a ring has already dropped keys
  // that state holds.
  void truncate(std::int64_t length);
  // Bytes a cache of this shape holds.
  static std::uint64_t bytes(const Config& config, std::int64_t batch, std::int64_t capacity);

  // The core's view of the storage (src/kv_cache.hpp).
  struct Storage;
  Storage& storage() const { return *s_; }

 private:
  std::unique_ptr<Storage> s_;
};

class MultiheadAttention {
 public:
  // Throws Error when the configuration is impossible. Parameters start as
  // PyTorch initialises them (xavier-uniform input projections, zero biases,
  // out_proj.weight uniform(+-1/sqrt(E)), xavier-normal bias_k/bias_v), drawn
  // deterministically from `seed`.
  explicit MultiheadAttention(const Config& config, std::uint64_t seed = 0);
  ~MultiheadAttention();
  MultiheadAttention(MultiheadAttention&&) noexcept;
  MultiheadAttention& operator=(MultiheadAttention&&) noexcept;

  const Config& config() const;  // kdim/vdim resolved
  std::int64_t head_dim() const;
  // S for a key sequence of length key_len.
  std::int64_t source_len(std::int64_t key_len) const;

  // The state_dict keys this configuration has, in PyTorch's order.
  std::vector<std::string> parameter_names() const;
  // The PyTorch shape of one parameter; throws Error for an unknown name.
  std::vector<std::int64_t> parameter_shape(const std::string& name) const;
  // Copies `count` floats into a parameter; throws Error when the name is not
  // one of parameter_names() or count is not the product of its shape.
  void set_parameter(const std::string& name, const float* data, std::size_t count);
  // What set_parameter checks, without setting: a reduced weightDtype's
  // range too, so that a state dict is checked whole before any of it loads.
  void check_parameter(const std::string& name, const float* data, std::size_t count) const;
  // The parameter's values, row-major in PyTorch's layout (a reduced
  // weight's dequantized: what the layer computes with).
  std::vector<float> parameter(const std::string& name) const;
  // Bytes the layer's parameters and their packed forms hold now.
  std::uint64_t weight_bytes() const;

  // Bytes of memory a forward call of this shape would allocate beyond what
  // the layer holds now (its workspace, per-thread scratch, weights not yet
  // packed for this kind of call), so that a caller with a bounded heap can
  // refuse the call before anything is allocated. self_attention: key and
  // value are null. Throws Error for an impossible shape.
  std::uint64_t forward_growth_bytes(std::int64_t batch, std::int64_t query_len, std::int64_t key_len,
                                     bool self_attention, NeedWeights need_weights) const;

  // Bytes a layer of this configuration holds once created and called:
  // its parameters and their packed copies. Throws Error for an impossible
  // configuration.
  static std::uint64_t layer_bytes(const Config& config);

  // Projects an encoder output [B, M, kdim] into `memory` (made for this
  // layer with batch B and capacity M): its keys and values, once, for
  // every later cross-attention call over it (Whisper's decoder).
  void project_memory(const float* input, std::int64_t batch, std::int64_t length, KVCache& memory);

  // Runs the layer. Checks every size and flag it can see and throws Error
  // before writing anything; buffer lengths are the caller's contract (table above).
  void forward(const ForwardInput& input, const ForwardOptions& options,
               const ForwardOutputs& outputs);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mha
