#include "checks.hpp"

#include "buffers.hpp"
#include "kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace mha {
namespace {

constexpr std::int64_t kMaxCount = std::int64_t(1) << 53;

[[noreturn]] void range_error(const std::string& message) {
  throw Error(Error::Kind::range, message);
}
[[noreturn]] void type_error(const std::string& message) {
  throw Error(Error::Kind::type, message);
}

std::string str(std::int64_t v) { return std::to_string(v); }

constexpr std::int64_t kMaxDim = (std::int64_t(1) << 31) - 1;

void check_non_negative(std::int64_t v, const char* name) {
  if (v < 0) range_error(std::string(name) + " must be >= 0, got " + str(v));
}

void check_pointer(const void* p, std::int64_t count, const char* name) {
  if (p == nullptr && count > 0)
    type_error(std::string(name) + " is null but must hold " + str(count) + " values");
}

// The options of today's decoder attention, and the names they need.
void check_decoder_options(const Config& c) {
  const bool torch = c.names == WeightNames::torch;
  if (torch && (c.num_kv_heads != c.num_heads || c.head_dim * c.num_heads != c.embed_dim))
    range_error("nn.MultiheadAttention's names (in_proj_weight, ...) hold num_kv_heads == num_heads and head_dim == embed_dim / num_heads; use Hugging Face's names for num_kv_heads=" +
                str(c.num_kv_heads) + ", head_dim=" + str(c.head_dim));
  if (torch && c.qk_norm_eps > 0) range_error("qk_norm needs Hugging Face's names (q_norm.weight, k_norm.weight)");
  if (torch && c.sinks) range_error("sinks need Hugging Face's names (the parameter `sinks`)");
  if (!torch && (c.add_bias_kv || c.add_zero_attn))
    range_error("add_bias_kv and add_zero_attn are nn.MultiheadAttention's: they need its names");
  const Rope& r = c.rope;
  if (r.dim < 0 || r.dim % 2 != 0 || r.dim > c.head_dim)
    range_error("rope.dim must be even and <= head_dim (" + str(c.head_dim) + "), got " + str(r.dim));
  if (r.dim > 0) {
    if (!(r.base > 1 && std::isfinite(r.base))) range_error("rope.base must be a finite number > 1, got " + std::to_string(r.base));
    if (r.scaling != Rope::Scaling::none && !(r.factor > 0 && std::isfinite(r.factor)))
      range_error("rope.scaling.factor must be a finite number > 0, got " + std::to_string(r.factor));
    if (r.scaling == Rope::Scaling::llama3 &&
        !(r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor && r.original_max_positions > 0 &&
          std::isfinite(r.high_freq_factor) && std::isfinite(r.original_max_positions)))
      range_error("rope.scaling (llama3) needs 0 < lowFreqFactor < highFreqFactor and originalMaxPositionEmbeddings > 0");
    const bool positive_finite_originals = r.original_max_positions > 0 && std::isfinite(r.original_max_positions);
    if (r.scaling == Rope::Scaling::yarn &&
        !(positive_finite_originals && r.beta_fast > 0 && std::isfinite(r.beta_fast) && r.beta_slow > 0 &&
          std::isfinite(r.beta_slow)))
      range_error("rope.scaling (yarn) needs betaFast > 0, betaSlow > 0 and originalMaxPositionEmbeddings > 0, finite");
    if (r.scaling == Rope::Scaling::longrope) {
      const std::size_t half = std::size_t(r.dim / 2);
      if (r.short_factor.size() != half || r.long_factor.size() != half)
        range_error("rope.scaling (longrope) needs shortFactor and longFactor of rope.dim / 2 = " + str(half) +
                    " values each, got " + str(r.short_factor.size()) + " and " + str(r.long_factor.size()));
      auto positive_finite = [](double f) { return f > 0 && std::isfinite(f); };
      if (!std::all_of(r.short_factor.begin(), r.short_factor.end(), positive_finite) ||
          !std::all_of(r.long_factor.begin(), r.long_factor.end(), positive_finite) || !positive_finite_originals)
        range_error("rope.scaling (longrope) needs finite factors > 0 and originalMaxPositionEmbeddings > 0");
    }
    if (!(r.attention_factor > 0 && std::isfinite(r.attention_factor)))
      range_error("rope.scaling.attentionFactor must be a finite number > 0, got " + std::to_string(r.attention_factor));
  }
  if (!(c.scale >= 0 && std::isfinite(c.scale))) range_error("scale must be a finite number > 0, got " + std::to_string(c.scale));
  if (!(c.softcap >= 0 && std::isfinite(c.softcap))) range_error("softcap must be a finite number > 0, got " + std::to_string(c.softcap));
  if (c.sliding_window < 0) range_error("sliding_window must be >= 1 (or 0 for none), got " + str(c.sliding_window));
  if (!(c.qk_norm_eps >= 0 && std::isfinite(c.qk_norm_eps)))
    range_error("qk_norm eps must be a finite number > 0, got " + std::to_string(c.qk_norm_eps));
  if ((c.add_bias_kv || c.add_zero_attn) && (c.softcap > 0 || c.alibi || c.sliding_window > 0 || r.dim > 0))
    range_error("add_bias_kv and add_zero_attn keys have no position: they do not combine with rope, alibi, softcap or sliding_window");
}

}  // namespace

std::string gib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", double(bytes) / double(std::uint64_t(1) << 30));
  return text;
}

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  if (a < 0 || b < 0) range_error(std::string(what) + ": negative size");
  if (a != 0 && b > (kMaxCount - 1) / a)
    range_error(std::string(what) + ": " + str(a) + " x " + str(b) + " elements is too large");
  return a * b;
}

Config checked_config(const Config& c) {
  Config r = c;
  if (c.embed_dim <= 0) range_error("embed_dim must be a positive integer, got " + str(c.embed_dim));
  if (c.num_heads <= 0) range_error("num_heads must be a positive integer, got " + str(c.num_heads));
  if (c.head_dim < 0) range_error("head_dim must be a positive integer (or 0 for embed_dim / num_heads), got " + str(c.head_dim));
  if (c.head_dim == 0 && c.embed_dim % c.num_heads != 0)
    range_error("embed_dim must be divisible by num_heads, got embed_dim=" + str(c.embed_dim) +
                " and num_heads=" + str(c.num_heads));
  if (c.kdim < 0) range_error("kdim must be a positive integer (or 0 for embed_dim), got " + str(c.kdim));
  if (c.vdim < 0) range_error("vdim must be a positive integer (or 0 for embed_dim), got " + str(c.vdim));
  if (c.num_kv_heads < 0)
    range_error("num_kv_heads must be a positive integer (or 0 for num_heads), got " + str(c.num_kv_heads));
  if (r.kdim == 0) r.kdim = c.embed_dim;
  if (r.vdim == 0) r.vdim = c.embed_dim;
  if (r.num_kv_heads == 0) r.num_kv_heads = c.num_heads;
  if (r.head_dim == 0) r.head_dim = c.embed_dim / c.num_heads;
  // Sizes are 32-bit in WebAssembly: no dimension past 2^31 - 1.
  for (auto [value, name] : {std::pair{r.embed_dim, "embed_dim"}, {r.kdim, "kdim"}, {r.vdim, "vdim"},
                             {r.num_heads, "num_heads"}, {r.head_dim, "head_dim"}})
    if (value > kMaxDim) range_error(std::string(name) + " must be <= " + str(kMaxDim) + ", got " + str(value));
  if (r.num_heads % r.num_kv_heads != 0)
    range_error("num_heads must be a multiple of num_kv_heads (each key/value head serves a group of query heads), got num_heads=" +
                str(r.num_heads) + " and num_kv_heads=" + str(r.num_kv_heads));
  check_decoder_options(r);
  if (r.weights != WeightFormat::f32 && r.weights != WeightFormat::f16 && r.weights != WeightFormat::bf16 &&
      r.weights != WeightFormat::int8)
    range_error("weights is not a WeightFormat value");
  // Every tensor of the layer, and all of them together, must be
  // addressable: this size_t (32 bits in wasm32) may not wrap around.
  const std::uint64_t bytes = MultiheadAttention::layer_bytes(r);
  if (bytes > std::numeric_limits<std::size_t>::max())
    range_error("a layer with embed_dim=" + str(r.embed_dim) + ", kdim=" + str(r.kdim) + ", vdim=" + str(r.vdim) +
                " needs " + gib(bytes) + " for its weights and their packed copies, more than this build can address (" +
                gib(std::uint64_t(std::numeric_limits<std::size_t>::max()) + 1) + ": wasm32's limit)");
  return r;
}

void check_call_shape(const Config& c, std::int64_t batch, std::int64_t query_len, std::int64_t key_len) {
  check_non_negative(batch, "input.batch");
  check_non_negative(query_len, "input.query_len");
  check_non_negative(key_len, "input.key_len");
  // Every buffer of the call counted exactly (under 2^53 elements): the
  // largest are the weights, B*H*Lq*S, and the projections, B*L*3E.
  const std::int64_t s = source_len(c, key_len);
  checked_mul(checked_mul(checked_mul(batch, c.num_heads, "weights"), query_len, "weights"), s, "weights");
  const std::int64_t widths = std::max(3 * c.embed_dim, (c.num_heads + 2 * c.num_kv_heads) * c.head_dim);
  checked_mul(checked_mul(batch, std::max(query_len, key_len), "projections"), widths, "projections");
}

void check_sources(const void* layer, const ForwardInput& in) {
  if (in.cache != nullptr && in.memory != nullptr) type_error("input: a cache or a memory, not both");
  for (const KVCache* kv : {static_cast<const KVCache*>(in.cache), in.memory}) {
    if (kv == nullptr) continue;
    const char* what = kv == in.cache ? "input.cache" : "input.memory";
    const KVCache::Storage& s = kv->storage();
    if (s.owner != layer) type_error(std::string(what) + " was made for another layer");
    if (in.key != nullptr || in.value != nullptr) type_error(std::string(what) + " is given: key and value must be null");
    if (s.batch != in.batch)
      range_error(std::string(what) + " holds " + str(s.batch) + " sequences, the query " + str(in.batch));
  }
  if (in.cache != nullptr && in.key_len != in.query_len)
    range_error("input.key_len must equal input.query_len with a cache, got " + str(in.key_len));
  if (in.memory != nullptr) {
    if (in.memory->storage().length == 0) range_error("input.memory holds nothing: project_memory fills it");
    if (in.key_len != in.memory->storage().held())
      range_error("input.key_len must be the memory's length (" + str(in.memory->storage().held()) + "), got " + str(in.key_len));
  }
}

void check_memory(const Config& c, const void* layer, const KVCache::Storage& m, const float* input,
                  std::int64_t batch, std::int64_t length) {
  if (m.owner != layer) type_error("memory was made for another layer");
  if (batch != m.batch || length != m.capacity)
    range_error("memory: the encoder output must be [" + str(m.batch) + ", " + str(m.capacity) + ", kdim] as the memory was made, got [" +
                str(batch) + ", " + str(length) + ", kdim]");
  check_pointer(input, checked_mul(checked_mul(batch, length, "memory"), c.kdim, "memory"), "input");
}

void check_forward(const Config& c, const ForwardInput& in, const ForwardOptions& o,
                   const ForwardOutputs& out) {
  check_call_shape(c, in.batch, in.query_len, in.key_len);
  const std::int64_t e = c.embed_dim, h = c.num_heads;
  const std::int64_t bq = checked_mul(in.batch, in.query_len, "query");
  const std::int64_t bk = checked_mul(in.batch, in.key_len, "key");
  const std::int64_t s = source_len(c, in.key_len);

  check_pointer(in.query, checked_mul(bq, e, "query"), "input.query");
  if (in.memory != nullptr) {
    // Cross-attention over a projected memory: its keys and values stand in.
  } else if (in.key == nullptr) {
    if (in.key_len != in.query_len)
      range_error("input.key_len must equal input.query_len (" + str(in.query_len) +
                  ") when key is null (self-attention), got " + str(in.key_len));
    if (c.kdim != e)
      range_error("key is null (self-attention) but kdim (" + str(c.kdim) +
                  ") differs from embed_dim (" + str(e) + ")");
  } else {
    check_pointer(in.key, checked_mul(bk, c.kdim, "key"), "input.key");
  }
  if (in.memory != nullptr) {
    // the memory's values stand in
  } else if (in.value == nullptr) {
    if (c.vdim != c.kdim)
      range_error("value is null (value = key) but vdim (" + str(c.vdim) + ") differs from kdim (" +
                  str(c.kdim) + ")");
  } else {
    check_pointer(in.value, checked_mul(bk, c.vdim, "value"), "input.value");
  }

  if (o.key_padding.blocked && o.key_padding.additive)
    type_error("options.key_padding: give blocked or additive, not both");
  if (o.attn.blocked && o.attn.additive)
    type_error("options.attn: give blocked or additive, not both");
  if (o.attn_per_head && !o.attn.present())
    type_error("options.attn_per_head is set but options.attn is empty");
  if (o.attn_per_head && o.attn_per_batch)
    type_error("options.attn_per_head and options.attn_per_batch are both set");
  if ((in.key != nullptr || in.memory != nullptr) && (c.rope.dim > 0 || c.alibi || o.positions != nullptr))
    range_error("rope, alibi and positions are for self-attention: cross-attention's keys have no positions of the queries' kind");
  if (o.valid_lens_per_query && o.valid_lens == nullptr)
    type_error("options.valid_lens_per_query is set but options.valid_lens is null");
  if (o.valid_lens != nullptr) {
    const std::int64_t n = o.valid_lens_per_query ? bq : in.batch;
    for (std::int64_t i = 0; i < n; ++i)
      if (o.valid_lens[i] < 0)
        range_error("options.valid_lens[" + str(i) + "] must be >= 0, got " + str(o.valid_lens[i]));
  }
  if (o.need_weights != NeedWeights::none && o.need_weights != NeedWeights::average &&
      o.need_weights != NeedWeights::per_head)
    range_error("options.need_weights is not a NeedWeights value");
  if (o.fully_masked_rows != FullyMaskedRows::zero && o.fully_masked_rows != FullyMaskedRows::nan)
    range_error("options.fully_masked_rows is not a FullyMaskedRows value");

  const std::int64_t out_count = checked_mul(bq, e, "output");
  check_pointer(out.output, out_count, "outputs.output");
  if (o.need_weights != NeedWeights::none) {
    std::int64_t n = checked_mul(bq, s, "weights");
    if (o.need_weights == NeedWeights::per_head) n = checked_mul(n, h, "weights");
    check_pointer(out.weights, n, "outputs.weights");
  }
}

}  // namespace mha
