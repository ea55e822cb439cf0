// The small SIMD primitives: axpy, scale, the shifted exponential sum,
// RMSNorm and the rotary turns. Every loop runs whole batches, then a scalar
// tail. (The GEMM is in gemm.cpp, the attention's kernels in
// attention_kernels.cpp; simd_batch.hpp is what they share.)
#include <algorithm>

#include "simd_batch.hpp"

namespace mha {
using namespace simd_lanes;
namespace simd {

void axpy(float alpha, const float* x, float* y, std::size_t n) {
  const batch va(alpha);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    madd(va, batch::load_unaligned(x + i), batch::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];  // scalar tail
}

void scale(float alpha, float* x, std::size_t n) {
  const batch va(alpha);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) (batch::load_unaligned(x + i) * va).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= alpha;  // scalar tail
}

float exp_shifted_sum(float* x, std::size_t n, float shift) {
  const batch vs(shift);
  const Exp2Constants k = exp2_constants();
  batch acc(0.0f);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const batch e = exp2_batch(batch::load_unaligned(x + i) - vs, k);
    e.store_unaligned(x + i);
    acc += e;
  }
  if (i < n) {  // the tail through the same polynomial, padded with exp(-inf) = 0
    alignas(16) float tail[kLanes];
    std::fill(tail, tail + kLanes, -std::numeric_limits<float>::infinity());
    std::copy(x + i, x + n, tail);
    const batch e = exp2_batch(batch::load_aligned(tail) - vs, k);
    e.store_aligned(tail);
    std::copy(tail, tail + (n - i), x + i);
    acc += e;
  }
  return xsimd::reduce_add(acc);
}

void rms_norm(float* x, std::size_t d, const float* w, float eps) {
  batch acc(0.0f);
  std::size_t t = 0;
  for (; t + kLanes <= d; t += kLanes) {
    const batch v = batch::load_unaligned(x + t);
    acc = madd(v, v, acc);
  }
  float sum = xsimd::reduce_add(acc);
  for (; t < d; ++t) sum += x[t] * x[t];  // scalar tail
  const float inv = 1.0f / std::sqrt(sum / float(d) + eps);
  const batch vinv(inv);
  for (t = 0; t + kLanes <= d; t += kLanes)
    (batch::load_unaligned(x + t) * vinv * batch::load_unaligned(w + t)).store_unaligned(x + t);
  for (; t < d; ++t) x[t] = x[t] * inv * w[t];  // scalar tail
}

void rotate_half(float* x, std::size_t r, const float* c, const float* s) {
  const std::size_t half = r / 2;
  std::size_t t = 0;
  for (; t + kLanes <= half; t += kLanes) {
    const batch a = batch::load_unaligned(x + t), b = batch::load_unaligned(x + t + half);
    const batch vc = batch::load_unaligned(c + t), vs = batch::load_unaligned(s + t);
    (a * vc - b * vs).store_unaligned(x + t);
    (b * vc + a * vs).store_unaligned(x + t + half);
  }
  for (; t < half; ++t) {  // scalar tail
    const float a = x[t], b = x[t + half];
    x[t] = a * c[t] - b * s[t];
    x[t + half] = b * c[t] + a * s[t];
  }
}

void rotate_interleaved(float* x, std::size_t r, const float* c, const float* s) {
  for (std::size_t t = 0; t < r / 2; ++t) {
    const float a = x[2 * t], b = x[2 * t + 1];
    x[2 * t] = a * c[t] - b * s[t];
    x[2 * t + 1] = b * c[t] + a * s[t];
  }
}


}  // namespace simd
}  // namespace mha
