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
#include <limits>
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

bool close(float got, float want) {
  if (std::isnan(want)) return std::isnan(got);
  return std::abs(got - want) <= 1e-3f + 1e-3f * std::abs(want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
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
    return 0;
  }
  const auto& rc = layer->config();
  bool exotic = false;
  for (const auto& name : layer->parameter_names()) {
    if (!in.flag()) continue;  // keep PyTorch's initial values for some
    auto v = in.values(layer->parameter(name).size(), &exotic);
    layer->set_parameter(name, v.data(), v.size());
  }

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
    return 0;  // refused cleanly: invalid lengths, self-attention with kdim != E, ...
  }
  if (exotic) return 0;  // non-finite and overflowing values: no crash is the property

  std::vector<float> r_out(out.size()), r_weights(weights.size()), r_heads(heads.size()), r_concat(concat.size());
  mha::reference::forward(*layer, fi, o, {r_out.data(), r_weights.data(), r_heads.data(), r_concat.data()});
  const std::size_t nw = o.need_weights == mha::NeedWeights::none ? 0
                         : o.need_weights == mha::NeedWeights::average ? rows * S : rows * S * H;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!close(out[i], r_out[i]) || !close(heads[i], r_heads[i]) || !close(concat[i], r_concat[i])) __builtin_trap();
  for (std::size_t i = 0; i < nw; ++i)
    if (!close(weights[i], r_weights[i])) __builtin_trap();
  return 0;
}
