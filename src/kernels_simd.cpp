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
// Rows of A per cache block: they stay in L2 while every panel of B streams
// past them once.
constexpr std::size_t kBlockRows = 64;
// Depth (k) of a cache block: a block of A is packed into kBlockRows x kDepth
// floats (64 KiB), and a panel's slice, kDepth x kPanel floats (8 KiB), stays
// in L1 while every row group of the block reads it.
constexpr std::size_t kDepth = 256;

// The current block of A, packed: row group g (rows 4g .. 4g+3) at
// g * depth * kRows, its element (r, kk) at kk * kRows + r, rows past the
// block's end zero. Why pack: the micro-kernel then walks A and B with two
// pointers and constant offsets. Read in place, every k step computed four
// row addresses and a multiply (WebAssembly has no scaled addressing and
// LLVM did not strength-reduce them): 18 integer instructions around 16
// floating-point ones. Packed, 4. Per thread: each pool worker packs its own.
alignas(16) thread_local float a_block[kBlockRows * kDepth];

void pack_a_block(const float* a, std::size_t lda, std::size_t rows, std::size_t depth) {
  for (std::size_t g = 0; g * kRows < rows; ++g) {
    float* dst = a_block + g * depth * kRows;
    const float* src = a + g * kRows * lda;
    const std::size_t in_group = std::min(kRows, rows - g * kRows);
    std::size_t kk = 0;
    if constexpr (kRows == kLanes) {  // whole groups: 4 x 4 tiles, transposed in registers
      if (in_group == kRows)
        for (; kk + kLanes <= depth; kk += kLanes) {
          batch tile[kRows];
          for (std::size_t r = 0; r < kRows; ++r) tile[r] = batch::load_unaligned(src + r * lda + kk);
          xsimd::transpose(tile, tile + kRows);
          for (std::size_t j = 0; j < kLanes; ++j) tile[j].store_unaligned(dst + (kk + j) * kRows);
        }
    }
    for (; kk < depth; ++kk)  // the rest, one element at a time; missing rows read 0
      for (std::size_t r = 0; r < kRows; ++r) dst[kk * kRows + r] = r < in_group ? src[r * lda + kk] : 0.0f;
  }
}

// C[ROWS, cols] = A[ROWS, depth] . panel[depth, kPanel] + init, for one row
// group of the packed block and one panel of kPanel columns. `init` is ROWS x
// kPanel values, row r at init + r * init_stride (init_stride 0 broadcasts one
// bias row); only the first `cols` columns of C are written.
template <std::size_t ROWS>
inline void micro_kernel(const float* pa, const float* pb, std::size_t depth,
                         const float* init, std::size_t init_stride, float* c, std::size_t ldc,
                         std::size_t cols) {
  batch acc[ROWS][kPanelBatches];
  for (std::size_t r = 0; r < ROWS; ++r)
    for (std::size_t j = 0; j < kPanelBatches; ++j)
      acc[r][j] = batch::load_unaligned(init + r * init_stride + j * kLanes);
  for (const float* end = pa + depth * kRows; pa != end; pa += kRows, pb += kPanel) {
    batch w[kPanelBatches];
    for (std::size_t j = 0; j < kPanelBatches; ++j) w[j] = batch::load_unaligned(pb + j * kLanes);
    for (std::size_t r = 0; r < ROWS; ++r) {
      const batch x(pa[r]);
      for (std::size_t j = 0; j < kPanelBatches; ++j) acc[r][j] = xsimd::fma(x, w[j], acc[r][j]);
    }
  }
  if (cols == kPanel) {
    for (std::size_t r = 0; r < ROWS; ++r)
      for (std::size_t j = 0; j < kPanelBatches; ++j)
        acc[r][j].store_unaligned(c + r * ldc + j * kLanes);
  } else {  // last, partial panel: the padded columns are dropped
    alignas(16) float tmp[kPanel];
    for (std::size_t r = 0; r < ROWS; ++r) {
      for (std::size_t j = 0; j < kPanelBatches; ++j) acc[r][j].store_unaligned(tmp + j * kLanes);
      std::copy(tmp, tmp + cols, c + r * ldc);
    }
  }
}

// One row group of up to kRows rows against one panel, choosing the starting
// values: the bias row, or (accumulate) the current contents of C.
template <std::size_t ROWS>
inline void row_group(const float* pa, const float* pb, std::size_t depth,
                      const float* bias_padded, bool accumulate, float* c, std::size_t ldc,
                      std::size_t cols) {
  if (!accumulate) {
    micro_kernel<ROWS>(pa, pb, depth, bias_padded, 0, c, ldc, cols);
    return;
  }
  if (cols == kPanel) {  // a whole panel of C is its own starting value
    micro_kernel<ROWS>(pa, pb, depth, c, ldc, c, ldc, cols);
    return;
  }
  alignas(16) float init[ROWS * kPanel] = {};  // C's last columns, padded to a panel
  for (std::size_t r = 0; r < ROWS; ++r) std::copy(c + r * ldc, c + r * ldc + cols, init + r * kPanel);
  micro_kernel<ROWS>(pa, pb, depth, init, kPanel, c, ldc, cols);
}

// e^x for a batch with x <= 0 (a score minus its row's max), to about 1 ulp:
// Cephes' expf (range reduction by ln 2 in two parts, a degree-6 polynomial,
// 2^n put straight into the exponent bits). xsimd::exp is exact too but, in
// its WebAssembly build, took ~80 cycles a batch - as much as the rest of the
// attention inner loop. Below ln(FLT_MIN) the result is 0 exactly (so a
// masked score's weight is exactly 0, as in PyTorch); NaN stays NaN.
// x <= 0 is why there is no clamp at ln(FLT_MAX): a clamp cost a NaN-safe
// min, 7 x86 instructions in V8, and one more constant than the 16 xmm
// registers hold along with the loop's own values.
inline batch exp_batch(batch x) {
  const batch lowest(-87.33654f);
  // 1.5 * 2^23 + 127: adding it rounds x / ln 2 to an integer n and leaves
  // n + 127, the biased exponent of 2^n, in the low bits of t.
  const batch log2e(1.44269504088896341f), magic(12583039.0f);
  const batch ln2_hi(0.693359375f), ln2_lo(-2.12194440e-4f);
  const batch t = xsimd::fma(x, log2e, magic);
  const batch n = t - magic;
  const batch r = xsimd::fnma(n, ln2_lo, xsimd::fnma(n, ln2_hi, x));  // x - n ln 2, |r| <= ln 2 / 2
  batch p(1.9875691500e-4f);
  p = xsimd::fma(p, r, batch(1.3981999507e-3f));
  p = xsimd::fma(p, r, batch(8.3334519073e-3f));
  p = xsimd::fma(p, r, batch(4.1665795894e-2f));
  p = xsimd::fma(p, r, batch(1.6666665459e-1f));
  p = xsimd::fma(p, r, batch(5.0000001201e-1f));
  p = xsimd::fma(p, r * r, r + batch(1.0f));
  // 2^n: shifting t's bits left by 23 drops everything above n + 127 and
  // puts n + 127 in the exponent field.
  const batch scale = xsimd::bitwise_cast<float>(xsimd::bitwise_cast<std::int32_t>(t) << 23);
  // Below ln(FLT_MIN) (and -inf, a masked score): 0 exactly, by clearing the
  // bits. NaN compares false and stays NaN through the arithmetic above.
  return xsimd::bitwise_andnot(p * scale, batch((x < lowest).data));
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
  for (; i + kLanes <= n; i += kLanes) {  // lane-wise nan_max: a NaN lane stays NaN
    const batch v = batch::load_unaligned(x + i);
    m = xsimd::select((v > m) | (v != v), v, m);
  }
  alignas(16) float lanes[kLanes];
  m.store_aligned(lanes);
  float result = lowest;
  for (float lane : lanes) result = nan_max(result, lane);
  for (; i < n; ++i) result = nan_max(result, x[i]);  // scalar tail
  return result;
}

float exp_shifted_sum(float* x, std::size_t n, float shift) {
  const batch vs(shift);
  batch acc(0.0f);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const batch e = exp_batch(batch::load_unaligned(x + i) - vs);
    e.store_unaligned(x + i);
    acc += e;
  }
  if (i < n) {  // the tail through the same polynomial, padded with exp(-inf) = 0
    alignas(16) float tail[kLanes];
    std::fill(tail, tail + kLanes, -std::numeric_limits<float>::infinity());
    std::copy(x + i, x + n, tail);
    const batch e = exp_batch(batch::load_aligned(tail) - vs);
    e.store_aligned(tail);
    std::copy(tail, tail + (n - i), x + i);
    acc += e;
  }
  return xsimd::reduce_add(acc);
}

void gemm(const float* a, std::size_t m, std::size_t lda, Panels b, std::size_t k, std::size_t n,
          const float* bias, bool accumulate, float* c, std::size_t ldc) {
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  for (std::size_t i0 = 0; i0 < m; i0 += kBlockRows) {
    const std::size_t rows = std::min(kBlockRows, m - i0);
    // k == 0 still runs one (empty) depth block: C = bias, or C unchanged.
    for (std::size_t k0 = 0; k0 == 0 || k0 < k; k0 += kDepth) {
      const std::size_t depth = std::min(kDepth, k - k0);
      if (depth > 0) pack_a_block(a + i0 * lda + k0, lda, rows, depth);
      // Later depth blocks add to what the earlier ones left in C: the same
      // additions in the same order as one pass over k, so the result is too.
      const bool add_to_c = accumulate || k0 > 0;
      for (std::size_t p = 0; p < panels; ++p) {
        const float* pb = b.data + p * b.panel_stride + k0 * kPanel;
        const std::size_t col0 = p * kPanel;
        const std::size_t cols = std::min(kPanel, n - col0);
        alignas(16) float bias_padded[kPanel] = {};
        if (bias != nullptr && !add_to_c) std::copy(bias + col0, bias + col0 + cols, bias_padded);
        float* cp = c + i0 * ldc + col0;
        std::size_t g = 0;
        for (; (g + 1) * kRows <= rows; ++g)
          row_group<kRows>(a_block + g * depth * kRows, pb, depth, bias_padded, add_to_c,
                           cp + g * kRows * ldc, ldc, cols);
        const float* pa = a_block + g * depth * kRows;
        float* cr = cp + g * kRows * ldc;
        switch (rows - g * kRows) {  // the rows left over from whole groups
          case 3: row_group<3>(pa, pb, depth, bias_padded, add_to_c, cr, ldc, cols); break;
          case 2: row_group<2>(pa, pb, depth, bias_padded, add_to_c, cr, ldc, cols); break;
          case 1: row_group<1>(pa, pb, depth, bias_padded, add_to_c, cr, ldc, cols); break;
          default: break;
        }
      }
    }
  }
}

void linear(const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w,
            const float* bias, float* y, std::size_t y_stride) {
  gemm(x, m, x_stride, panels_of(w), w.k, w.n, bias, false, y, y_stride);
}

}  // namespace simd
}  // namespace mha
