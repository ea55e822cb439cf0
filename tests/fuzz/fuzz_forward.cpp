// libFuzzer harness over the C++ entry points: configurations, shapes, masks,
// options and values (NaN, infinities, huge and tiny numbers) drawn from the
// fuzzer's bytes. It checks that nothing crashes or reads out of bounds (run
// under ASan/UBSan), that invalid arguments end in mha::Error, and that for
// finite, moderate inputs the fast path agrees with the double-precision
// reference.
//
// Built twice: with -fsanitize=fuzzer (clang, scripts/fuzz.sh) to search, and
// with replay_main.cpp (any compiler, CTest) to re-run the committed corpus
// and every past crash as regression tests.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include "mha.hpp"
#include "reference.hpp"

namespace {

class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  std::uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  int small(int n) { return byte() % n; }  // [0, n)
  bool flag() { return byte() & 1; }
  float value(bool* exotic) {
    const std::uint8_t kind = byte();
    switch (kind % 16) {  // mostly ordinary numbers, sometimes the hard ones
      case 0: *exotic = true; return std::numeric_limits<float>::quiet_NaN();
      case 1: *exotic = true; return std::numeric_limits<float>::infinity();
      case 2: *exotic = true; return -std::numeric_limits<float>::infinity();
      case 3: *exotic = true; return (kind & 16 ? -1.0f : 1.0f) * 3e38f;
      case 4: return 1e-38f;
      case 5: return 0.0f;
      default: return (float(byte()) - 127.5f) / 32.0f;
    }
  }
  std::vector<float> values(std::size_t n, bool* exotic) {
    std::vector<float> v(n);
    for (auto& x : v) x = value(exotic);
    return v;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Some of the layer's parameters from the bytes, the rest as initialised.
void set_some_parameters(mha::MultiheadAttention& layer, Bytes& in, bool* exotic) {
  for (const auto& name : layer.parameter_names()) {
    if (!in.flag()) continue;
    auto v = in.values(layer.parameter(name).size(), exotic);
    layer.set_parameter(name, v.data(), v.size());
  }
}

bool close(float got, float want) {
  if (std::isnan(want)) return std::isnan(got);
  return std::abs(got - want) <= 1e-3f + 1e-3f * std::abs(want);
}

// nn.MultiheadAttention's configurations and options.
void fuzz_torch_layer(Bytes& in) {
  mha::Config c;
  c.num_heads = 1 + in.small(4);
  c.embed_dim = c.num_heads * (1 + in.small(9));
  if (in.small(8) == 0) c.embed_dim += 1;  // sometimes not divisible: must be refused
  c.kdim = in.flag() ? 0 : 1 + in.small(10);
  c.vdim = in.flag() ? 0 : 1 + in.small(10);
  c.bias = in.flag();
  c.add_bias_kv = in.flag();
  c.add_zero_attn = in.flag();

  std::unique_ptr<mha::MultiheadAttention> layer;
  try {
    layer = std::make_unique<mha::MultiheadAttention>(c, in.byte());
  } catch (const mha::Error&) {
    return;
  }
  const auto& rc = layer->config();
  bool exotic = false;
  set_some_parameters(*layer, in, &exotic);

  const std::int64_t B = in.small(3), Lq = in.small(10);
  const bool cross = in.flag();
  const std::int64_t Lk = cross ? in.small(10) : Lq;
  const std::int64_t E = rc.embed_dim, H = rc.num_heads;
  auto query = in.values(std::size_t(B * Lq * E), &exotic);
  auto key = in.values(std::size_t(B * Lk * rc.kdim), &exotic);
  auto value = in.values(std::size_t(B * Lk * rc.vdim), &exotic);

  mha::ForwardOptions o;
  std::vector<std::uint8_t> kp_blocked(std::size_t(B * Lk)), attn_blocked(std::size_t(B * H * Lq * Lk));
  for (auto& x : kp_blocked) x = in.small(4) == 0;
  for (auto& x : attn_blocked) x = in.small(4) == 0;
  auto kp_add = in.values(kp_blocked.size(), &exotic);
  auto attn_add = in.values(attn_blocked.size(), &exotic);
  switch (in.small(3)) {
    case 1: o.key_padding.blocked = kp_blocked.data(); break;
    case 2: o.key_padding.additive = kp_add.data(); break;
  }
  o.attn_per_head = in.flag();
  switch (in.small(3)) {
    case 1: o.attn.blocked = attn_blocked.data(); break;
    case 2: o.attn.additive = attn_add.data(); break;
  }
  if (!o.attn.present()) o.attn_per_head = false;
  o.is_causal = in.flag();
  std::vector<std::int32_t> lens(std::size_t(B * Lq));
  for (auto& x : lens) x = std::int32_t(in.small(12)) - 1;  // -1 must be refused
  if (in.flag()) {
    o.valid_lens = lens.data();
    o.valid_lens_per_query = in.flag();
  }
  o.need_weights = static_cast<mha::NeedWeights>(in.small(3));
  o.fully_masked_rows = in.flag() ? mha::FullyMaskedRows::nan : mha::FullyMaskedRows::zero;

  const std::size_t rows = std::size_t(B * Lq), S = std::size_t(layer->source_len(Lk));
  std::vector<float> out(rows * E), weights(rows * S * H), heads(rows * E), concat(rows * E);
  mha::ForwardInput fi{B, Lq, Lk, query.data(), cross ? key.data() : nullptr, cross ? value.data() : nullptr};
  mha::ForwardOutputs fo{out.data(), weights.data(), heads.data(), concat.data()};
  try {
    layer->forward(fi, o, fo);
  } catch (const mha::Error&) {
    return;  // refused cleanly: invalid lengths, self-attention with kdim != E, ...
  }
  if (exotic) return;  // non-finite and overflowing values: no crash is the property

  std::vector<float> r_out(out.size()), r_weights(weights.size()), r_heads(heads.size()), r_concat(concat.size());
  mha::reference::forward(*layer, fi, o, {r_out.data(), r_weights.data(), r_heads.data(), r_concat.data()});
  const std::size_t nw = o.need_weights == mha::NeedWeights::none ? 0
                         : o.need_weights == mha::NeedWeights::average ? rows * S : rows * S * H;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!close(out[i], r_out[i]) || !close(heads[i], r_heads[i]) || !close(concat[i], r_concat[i])) __builtin_trap();
  for (std::size_t i = 0; i < nw; ++i)
    if (!close(weights[i], r_weights[i])) __builtin_trap();
}

// Today's decoder attention: grouped heads, head widths, RoPE, QK-norm,
// scale, softcap, ALiBi, windows, positions, then the same tokens through a
// key/value cache in two pieces, which must give the whole call's rows.
void fuzz_decoder_layer(Bytes& in) {
  mha::Config c;
  c.names = mha::WeightNames::hf;
  c.num_kv_heads = 1 + in.small(3);
  c.num_heads = c.num_kv_heads * (1 + in.small(3));
  if (in.small(8) == 0) c.num_heads += 1;  // sometimes not a multiple: must be refused
  c.head_dim = 1 + in.small(10);
  c.embed_dim = 1 + in.small(12);
  c.hf_bias = {in.flag(), in.flag(), in.flag(), in.flag()};
  if (in.flag()) {
    c.rope.dim = 2 * in.small(6);  // sometimes past head_dim: must be refused
    c.rope.layout = in.flag() ? mha::Rope::Layout::interleaved : mha::Rope::Layout::half;
    c.rope.scaling = static_cast<mha::Rope::Scaling>(in.small(3));
    c.rope.factor = 1 + in.small(8);
  }
  if (in.flag()) c.scale = 0.05 * (1 + in.small(20));
  if (in.flag()) c.softcap = 0.5 * in.small(10);
  c.alibi = in.small(4) == 0;
  if (in.flag()) c.sliding_window = in.small(6);
  if (in.flag()) c.qk_norm_eps = 1e-6;
  std::unique_ptr<mha::MultiheadAttention> layer;
  try {
    layer = std::make_unique<mha::MultiheadAttention>(c, in.byte());
  } catch (const mha::Error&) {
    return;
  }
  const auto& rc = layer->config();
  bool exotic = false;
  set_some_parameters(*layer, in, &exotic);
  const std::int64_t B = 1 + in.small(2), L = 1 + in.small(9), E = rc.embed_dim, H = rc.num_heads;
  auto x = in.values(std::size_t(B * L * E), &exotic);
  // Explicit positions increase along each sequence (with gaps), as a
  // decoder's do: only then do pieces through a cache equal the whole call.
  std::vector<std::int32_t> positions(std::size_t(B * L));
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < L; ++i)
      positions[std::size_t(b * L + i)] = i == 0 ? in.small(3) : positions[std::size_t(b * L + i - 1)] + 1 + in.small(3);
  mha::ForwardOptions o;
  o.is_causal = true;
  if (in.flag()) o.positions = positions.data();
  o.need_weights = mha::NeedWeights::per_head;
  const std::size_t rows = std::size_t(B * L), width = std::size_t(H * rc.head_dim);
  std::vector<float> out(rows * E), weights(rows * L * H), heads(rows * width), concat(rows * width);
  mha::ForwardInput fi{B, L, L, x.data()};
  try {
    layer->forward(fi, o, {out.data(), weights.data(), heads.data(), concat.data()});
  } catch (const mha::Error&) {
    return;
  }
  if (exotic) return;
  std::vector<float> r_out(out.size()), r_weights(weights.size()), r_heads(heads.size()), r_concat(concat.size());
  mha::reference::forward(*layer, fi, o, {r_out.data(), r_weights.data(), r_heads.data(), r_concat.data()});
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!close(out[i], r_out[i])) __builtin_trap();
  for (std::size_t i = 0; i < weights.size(); ++i)
    if (!close(weights[i], r_weights[i])) __builtin_trap();

  // The same tokens through a cache, in two pieces (explicit positions are
  // the whole call's; the cache's capacity leaves a window's ring room).
  const std::int64_t first = 1 + in.small(int(L)) - 1, second = L - first;
  const std::int64_t window = rc.sliding_window;
  const std::int64_t capacity = window > 0 ? std::min<std::int64_t>(L, window - 1 + std::max(first, second)) : L;
  if (first == 0 || capacity < 1) return;
  mha::KVCache cache(*layer, B, capacity);
  std::int64_t start = 0;
  for (std::int64_t n : {first, second}) {
    std::vector<float> piece;
    std::vector<std::int32_t> piece_positions;
    for (std::int64_t b = 0; b < B; ++b) {
      piece.insert(piece.end(), x.begin() + (b * L + start) * E, x.begin() + (b * L + start + n) * E);
      piece_positions.insert(piece_positions.end(), positions.begin() + b * L + start, positions.begin() + b * L + start + n);
    }
    mha::ForwardOptions po;
    po.positions = o.positions ? piece_positions.data() : nullptr;
    std::vector<float> part(std::size_t(B * n * E));
    mha::ForwardInput pi{B, n, n, piece.data(), nullptr, nullptr, &cache, nullptr};
    try {
      layer->forward(pi, po, {part.data(), nullptr, nullptr, nullptr});
    } catch (const mha::Error&) {
      return;  // a ring too small for the piece: refused, as documented
    }
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < n * E; ++i)
        if (!close(part[std::size_t(b * n * E + i)], out[std::size_t((b * L + start) * E + i)])) __builtin_trap();
    start += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  fuzz_torch_layer(in);
  fuzz_decoder_layer(in);
  return 0;
}
