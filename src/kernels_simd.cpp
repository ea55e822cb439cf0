// The SIMD primitives, written once on xsimd::batch<float>. xsimd picks the
// instruction set at compile time: f32x4 under `em++ -msimd128`, SSE/AVX
// natively. Every loop runs whole batches, then a scalar tail.
#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "kernels.hpp"

namespace mha {
namespace {

using batch = xsimd::batch<float>;
constexpr std::size_t kLanes = batch::size;
constexpr std::size_t kPanel = PackedWeight::kPanel;
static_assert(kPanel % kLanes == 0, "a weight panel must be whole batches");
constexpr std::size_t kPanelBatches = kPanel / kLanes;

// Rows of x per micro-kernel call. kRows x kPanelBatches accumulators plus
// kPanelBatches weight batches plus one broadcast: 4*2 + 2 + 1 = 11 live f32x4
// values, under the ~13 that V8 keeps in xmm registers without spilling.
constexpr std::size_t kRows = 4;
// Rows of x per cache block: kBlockRows * K floats (128 KiB at K = 512) stay
// in L2 while every weight panel streams past them once.
constexpr std::size_t kBlockRows = 64;

// y[ROWS, cols] = x[ROWS, K] . panel + bias, for one panel of kPanel columns.
template <std::size_t ROWS>
inline void micro_kernel(const float* x, std::size_t x_stride, const float* panel, std::size_t k,
                         const float* bias_padded, float* y, std::size_t y_stride,
                         std::size_t cols) {
  batch acc[ROWS][kPanelBatches];
  for (std::size_t c = 0; c < kPanelBatches; ++c) {
    const batch b = batch::load_unaligned(bias_padded + c * kLanes);
    for (std::size_t r = 0; r < ROWS; ++r) acc[r][c] = b;
  }
  for (std::size_t kk = 0; kk < k; ++kk) {
    batch w[kPanelBatches];
    for (std::size_t c = 0; c < kPanelBatches; ++c)
      w[c] = batch::load_unaligned(panel + kk * kPanel + c * kLanes);
    for (std::size_t r = 0; r < ROWS; ++r) {
      const batch a(x[r * x_stride + kk]);
      for (std::size_t c = 0; c < kPanelBatches; ++c) acc[r][c] = xsimd::fma(a, w[c], acc[r][c]);
    }
  }
  if (cols == kPanel) {
    for (std::size_t r = 0; r < ROWS; ++r)
      for (std::size_t c = 0; c < kPanelBatches; ++c)
        acc[r][c].store_unaligned(y + r * y_stride + c * kLanes);
  } else {  // last, partial panel: the padded columns are dropped
    alignas(16) float tmp[kPanel];
    for (std::size_t r = 0; r < ROWS; ++r) {
      for (std::size_t c = 0; c < kPanelBatches; ++c) acc[r][c].store_unaligned(tmp + c * kLanes);
      std::copy(tmp, tmp + cols, y + r * y_stride);
    }
  }
}

}  // namespace

PackedWeight pack_weight(const float* w, std::size_t n, std::size_t k) {
  PackedWeight packed;
  packed.n = n;
  packed.k = k;
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  packed.data.assign(panels * k * kPanel, 0.0f);
  for (std::size_t p = 0; p < panels; ++p) {
    float* panel = packed.data.data() + p * k * kPanel;
    const std::size_t cols = std::min(kPanel, n - p * kPanel);
    for (std::size_t c = 0; c < cols; ++c) {
      const float* w_row = w + (p * kPanel + c) * k;  // W[p*kPanel + c, :]
      for (std::size_t kk = 0; kk < k; ++kk) panel[kk * kPanel + c] = w_row[kk];
    }
  }
  return packed;
}

namespace simd {

float dot(const float* a, const float* b, std::size_t n) {
  // Two accumulators hide part of the add latency for the long head widths.
  batch acc0(0.0f), acc1(0.0f);
  std::size_t i = 0;
  for (; i + 2 * kLanes <= n; i += 2 * kLanes) {
    acc0 = xsimd::fma(batch::load_unaligned(a + i), batch::load_unaligned(b + i), acc0);
    acc1 = xsimd::fma(batch::load_unaligned(a + i + kLanes), batch::load_unaligned(b + i + kLanes),
                      acc1);
  }
  for (; i + kLanes <= n; i += kLanes)
    acc0 = xsimd::fma(batch::load_unaligned(a + i), batch::load_unaligned(b + i), acc0);
  float sum = xsimd::reduce_add(acc0 + acc1);
  for (; i < n; ++i) sum += a[i] * b[i];  // scalar tail
  return sum;
}

void axpy(float alpha, const float* x, float* y, std::size_t n) {
  const batch va(alpha);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    xsimd::fma(va, batch::load_unaligned(x + i), batch::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];  // scalar tail
}

void scale(float alpha, float* x, std::size_t n) {
  const batch va(alpha);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) (batch::load_unaligned(x + i) * va).store_unaligned(x + i);
  for (; i < n; ++i) x[i] *= alpha;  // scalar tail
}

float max(const float* x, std::size_t n) {
  constexpr float lowest = -std::numeric_limits<float>::infinity();
  batch m(lowest);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) m = xsimd::max(m, batch::load_unaligned(x + i));
  float result = xsimd::reduce_max(m);
  for (; i < n; ++i) result = std::max(result, x[i]);  // scalar tail
  return result;
}

float exp_shifted_sum(float* x, std::size_t n, float shift) {
  const batch vs(shift);
  batch acc(0.0f);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const batch e = xsimd::exp(batch::load_unaligned(x + i) - vs);
    e.store_unaligned(x + i);
    acc += e;
  }
  float sum = xsimd::reduce_add(acc);
  for (; i < n; ++i) {  // scalar tail
    x[i] = std::exp(x[i] - shift);
    sum += x[i];
  }
  return sum;
}

void linear(const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w,
            const float* bias, float* y, std::size_t y_stride) {
  const std::size_t n = w.n, k = w.k;
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  for (std::size_t i0 = 0; i0 < m; i0 += kBlockRows) {
    const std::size_t i1 = std::min(m, i0 + kBlockRows);
    for (std::size_t p = 0; p < panels; ++p) {
      const float* panel = w.data.data() + p * k * kPanel;
      const std::size_t col0 = p * kPanel;
      const std::size_t cols = std::min(kPanel, n - col0);
      alignas(16) float bias_padded[kPanel] = {};
      if (bias != nullptr) std::copy(bias + col0, bias + col0 + cols, bias_padded);
      std::size_t i = i0;
      for (; i + kRows <= i1; i += kRows)
        micro_kernel<kRows>(x + i * x_stride, x_stride, panel, k, bias_padded,
                            y + i * y_stride + col0, y_stride, cols);
      const float* xr = x + i * x_stride;
      float* yr = y + i * y_stride + col0;
      switch (i1 - i) {  // the rows left over from whole kRows blocks
        case 3: micro_kernel<3>(xr, x_stride, panel, k, bias_padded, yr, y_stride, cols); break;
        case 2: micro_kernel<2>(xr, x_stride, panel, k, bias_padded, yr, y_stride, cols); break;
        case 1: micro_kernel<1>(xr, x_stride, panel, k, bias_padded, yr, y_stride, cols); break;
        default: break;
      }
    }
  }
}

}  // namespace simd
}  // namespace mha
