// The GEMM: weights packed into panels (any WeightFormat, widened in
// registers), A packed into row groups block by block, a micro-kernel per
// row group and panel (micro_kernels.hpp), and decoding's single-row kernels
// for m = 1 (row_kernels.hpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "micro_kernels.hpp"
#include "reduced_panel.hpp"
#include "row_kernels.hpp"
#include "simd_batch.hpp"

namespace mha {
using namespace simd_lanes;
using namespace panel_values;
using namespace single_row;
namespace {
using micro::micro_kernel;  // overloaded below for ScaledF16Panel

// Rows per micro-kernel call. SIMD128: kGemmRows x kPanelBatches = 5 x 2
// accumulators, plus 2 weight batches, 1 broadcast and 1 product: 14 live
// f32x4 values, one under the 15 xmm registers V8 allocates (the 16th is its
// scratch). Each k step is 2 loads, 5 load-splats and 10 mul + 10 add: more
// arithmetic per load and per loop step than 4 x 8, and faster
// (bench/limits.md, "Kernel shapes"). Relaxed SIMD's fused multiply-add
// leaves no product to hold, so a sixth row fits: 6 x 2 + 2 + 1 = 15 values,
// 12 multiply-adds per 2 loads, 6 load-splats and the same loop control.
constexpr std::size_t kRows = kGemmRows;
// Rows per call over a reduced panel (f16, bf16, int8) in every build: its
// conversion holds a temporary and up to two constants besides, so six rows
// spilled accumulators in the relaxed build (4 moves to or from the stack
// per k step), and five fit.
constexpr std::size_t kReducedRows = 5;
// A cache block of A: up to kBlockGroups row groups (160 rows, 192 with
// relaxed SIMD; a 128-row projection is one block, not 80 + 48: see
// bench/limits.md), packed, at most kBlockFloats floats. The rows stay in L2
// while every panel of B streams past them once, so the weights stream once
// per block. The block takes the whole depth k when it can, with fewer rows
// if it must: split over k, each later part of C re-reads C, whose tiles by
// then have left L1 and L2, and a projection at k = 2048 ran 12 % slower in
// four depth blocks than in one (bench/limits.md).
constexpr std::size_t kBlockGroups = 32;
constexpr std::size_t kBlockFloats = 192 * 2048;

// The current block of A in row groups of R rows (kRows or kReducedRows),
// RowGroups{a_block, depth * R, R}. Per thread: each pool worker packs its
// own.
alignas(16) thread_local float a_block[kBlockFloats];

// A block's depth and rows for k and R: the whole depth in at least one
// group when it fits (else whole int8 blocks of it), then as many groups as
// fit, up to kBlockGroups.
struct BlockShape {
  std::size_t depth, rows;
};
template <std::size_t R>
BlockShape block_shape(std::size_t k) {
  constexpr std::size_t max_depth = kBlockFloats / R / kQuantBlock * kQuantBlock;
  const std::size_t depth = std::max<std::size_t>(1, std::min(k, max_depth));  // k = 0: one empty block
  const std::size_t groups = std::min(kBlockGroups, kBlockFloats / (depth * R));
  return {depth, groups * R};
}

inline ReducedPanel<WeightFormat::f32> as_panel(const float* w) { return {w, nullptr}; }
template <WeightFormat F>
inline ReducedPanel<F> as_panel(ReducedPanel<F> p) { return p; }

// The panels of a GEMM's B operand, any format: panel(p) is what the
// micro-kernel reads, from_depth(k0) the same panels from k row k0 on.
struct F32Panels {
  Panels b;
  const float* panel(std::size_t p) const { return b.data + p * b.panel_stride; }
  F32Panels from_depth(std::size_t k0) const { return {Panels{b.data + k0 * kPanel, b.panel_stride}}; }
};
template <WeightFormat F>
struct ReducedPanels {
  ReducedPanel<F> first;
  std::size_t panel_stride;  // values
  std::size_t scale_stride;  // floats
  ReducedPanel<F> panel(std::size_t p) const { return {first.w + p * panel_stride, first.scales + p * scale_stride}; }
  // k0 is a multiple of kQuantBlock (block_shape's depths are).
  ReducedPanels from_depth(std::size_t k0) const {
    const float* s = ReducedPanel<F>::kBlock ? first.scales + k0 / kQuantBlock * kPanel : first.scales;
    return {{first.w + k0 * kPanel, s}, panel_stride, scale_stride};
  }
};

// f16 panels against an A packed times 2^112 (gemm_blocked decides):
// the kScaledUp loops of micro_kernel and row_kernel.
struct ScaledF16Panel {
  ReducedPanel<WeightFormat::f16> f16;
};
template <std::size_t ROWS>
inline void micro_kernel(const float* pa, std::size_t a_step, ScaledF16Panel pb, std::size_t depth, const float* init,
                         std::size_t init_stride, float* c, std::size_t ldc) {
  micro_kernel<ROWS, WeightFormat::f16, true>(pa, a_step, pb.f16, depth, init, init_stride, c, ldc);
}
struct ScaledF16Panels {
  ReducedPanels<WeightFormat::f16> f16;
  ScaledF16Panel panel(std::size_t p) const { return {f16.panel(p)}; }
};
inline ReducedPanel<WeightFormat::f16> as_panel(ScaledF16Panel p) { return p.f16; }

// One row group of up to kRows rows against one panel, of which the first
// `cols` columns are C's: starts from the bias row, or (accumulate) from C.
template <std::size_t ROWS, typename Panel>
inline void row_group(const float* pa, std::size_t a_step, Panel pb, std::size_t depth,
                      const float* bias_padded, bool accumulate, float* c, std::size_t ldc,
                      std::size_t cols) {
  if (cols == kPanel) {  // a whole panel of C: written in place, and its own starting value
    if (accumulate) micro_kernel<ROWS>(pa, a_step, pb, depth, c, ldc, c, ldc);
    else micro_kernel<ROWS>(pa, a_step, pb, depth, bias_padded, 0, c, ldc);
    return;
  }
  // The last, partial panel: through a panel-wide buffer, whose padding
  // columns are dropped.
  alignas(16) float part[ROWS * kPanel] = {};
  for (std::size_t r = 0; r < ROWS; ++r)
    std::copy_n(accumulate ? c + r * ldc : bias_padded, cols, part + r * kPanel);
  micro_kernel<ROWS>(pa, a_step, pb, depth, part, kPanel, part, kPanel);
  for (std::size_t r = 0; r < ROWS; ++r) std::copy_n(part + r * kPanel, cols, c + r * ldc);
}

// pack_panels over rows found by row(i): W[i, :].
template <typename Row>
void pack_rows(Row row, std::size_t n, std::size_t k, float* dst) {
  for (std::size_t p = 0; p * kPanel < n; ++p) {
    float* panel = dst + p * k * kPanel;
    const std::size_t cols = std::min(kPanel, n - p * kPanel);
    for (std::size_t c = 0; c < cols; ++c) {
      const float* w_row = row(p * kPanel + c);
      for (std::size_t kk = 0; kk < k; ++kk) panel[kk * kPanel + c] = w_row[kk];
    }
    // The padding columns column by column too: a fill per k row would be a
    // memset call per k row in WebAssembly (attention packs every query
    // block so).
    for (std::size_t c = cols; c < kPanel; ++c)
      for (std::size_t kk = 0; kk < k; ++kk) panel[kk * kPanel + c] = 0.0f;
  }
}
}  // namespace

void pack_panels(const float* w, std::size_t n, std::size_t k, std::size_t w_stride, float* dst) {
  pack_rows([&](std::size_t i) { return w + i * w_stride; }, n, k, dst);
}

PackedWeight pack_weight_rows(const std::vector<const float*>& rows, std::size_t k) {
  PackedWeight packed;
  packed.n = rows.size();
  packed.k = k;
  packed.data.resize((packed.n + kPanel - 1) / kPanel * k * kPanel);
  pack_rows([&](std::size_t i) { return rows[i]; }, packed.n, k, packed.data.data());
  return packed;
}

PackedWeight pack_weight(const float* w, std::size_t n, std::size_t k) {
  PackedWeight packed;
  packed.n = n;
  packed.k = k;
  packed.data.resize((n + kPanel - 1) / kPanel * k * kPanel);
  pack_panels(w, n, k, k, packed.data.data());
  return packed;
}

namespace {

// pack_row_groups for groups of R rows.
template <std::size_t R>
void pack_groups(const float* a, std::size_t lda, std::size_t rows, std::size_t depth, float* dst) {
  static_assert(R >= kLanes && R < 2 * kLanes, "the packing below transposes 4 rows and copies the rest");
  for (std::size_t g = 0; g * R < rows; ++g, dst += depth * R) {
    const float* src = a + g * R * lda;
    const std::size_t in_group = std::min(R, rows - g * R);
    std::size_t kk = 0;
    if (in_group == R)  // whole groups: rows 0-3 by 4 x 4 register transposes, the rest as they are
      for (; kk + kLanes <= depth; kk += kLanes) {
        batch tile[kLanes];
        for (std::size_t r = 0; r < kLanes; ++r) tile[r] = batch::load_unaligned(src + r * lda + kk);
        xsimd::transpose(tile, tile + kLanes);
        for (std::size_t j = 0; j < kLanes; ++j) {
          tile[j].store_unaligned(dst + (kk + j) * R);
          for (std::size_t r = kLanes; r < R; ++r) dst[(kk + j) * R + r] = src[r * lda + kk + j];
        }
      }
    for (; kk < depth; ++kk)  // the rest, one element at a time; missing rows read 0
      for (std::size_t r = 0; r < R; ++r) dst[kk * R + r] = r < in_group ? src[r * lda + kk] : 0.0f;
  }
}

}  // namespace
namespace simd {

void pack_row_groups(const float* a, std::size_t lda, std::size_t rows, std::size_t depth, float* dst) {
  pack_groups<kRows>(a, lda, rows, depth, dst);
}

}  // namespace simd
namespace {


// dst = src times 2^112 (in place if dst is src), when every |x| < 2^16, so
// that each product with an f16 weight stays finite (NaN and infinities
// fail the test, and nothing is written); says whether it did.
bool scale_up_for_f16(const float* src, float* dst, std::size_t floats) {
  for (std::size_t i = 0; i < floats; ++i)
    if (!(std::fabs(src[i]) < 0x1p16f)) return false;
  for (std::size_t i = 0; i < floats; ++i) dst[i] = src[i] * 0x1p112f;
  return true;
}

// gemm over row groups of R rows, for any panel format.
template <std::size_t R, typename PanelSet>
void gemm_groups(RowGroups a, std::size_t m, const PanelSet& b, std::size_t k, std::size_t n, const float* bias,
                 bool accumulate, float* c, std::size_t ldc) {
  const std::size_t panels = (n + kPanel - 1) / kPanel, groups = m / R;
  std::size_t p = 0;
  if (m == 1) {  // whole panels kRowPanels at a time; C's row is contiguous
    using Panel = decltype(as_panel(b.panel(0)));
#if defined(__wasm_relaxed_simd__)
    bool int8_scaled = false;
    if constexpr (std::is_same_v<Panel, ReducedPanel<WeightFormat::int8>>) int8_scaled = int8_row_scales(a, k);
#endif
    for (; p + kRowPanels <= n / kPanel; p += kRowPanels) {
      float* cp = c + p * kPanel;
      if (!accumulate) {
        if (bias != nullptr) std::copy(bias + p * kPanel, bias + (p + kRowPanels) * kPanel, cp);
        else std::fill(cp, cp + kRowPanels * kPanel, 0.0f);
      }
      Panel pb[kRowPanels];
      for (std::size_t q = 0; q < kRowPanels; ++q) pb[q] = as_panel(b.panel(p + q));
      if constexpr (std::is_same_v<PanelSet, ScaledF16Panels>) {
        row_kernel<WeightFormat::f16, true>(a.data, a.k_stride, pb, k, cp);
        continue;
      }
#if defined(__wasm_relaxed_simd__)
      if constexpr (std::is_same_v<Panel, ReducedPanel<WeightFormat::int8>>) {
        if (int8_scaled) {
          row_kernel<WeightFormat::int8, true>(a.data, a.k_stride, pb, k, cp);
          continue;
        }
      }
#endif
      row_kernel(a.data, a.k_stride, pb, k, cp);
    }
  }
  for (; p < panels; ++p) {
    const auto pb = b.panel(p);
    const std::size_t col0 = p * kPanel;
    const std::size_t cols = std::min(kPanel, n - col0);
    alignas(16) float bias_padded[kPanel] = {};
    if (bias != nullptr && !accumulate) std::copy(bias + col0, bias + col0 + cols, bias_padded);
    float* cp = c + col0;
    for (std::size_t g = 0; g < groups; ++g)
      row_group<R>(a.data + g * a.group_stride, a.k_stride, pb, k, bias_padded, accumulate,
                   cp + g * R * ldc, ldc, cols);
    const float* pa = a.data + groups * a.group_stride;
    float* cr = cp + groups * R * ldc;
    static_assert(R <= 6, "the switch below covers up to 5 rows left over");
    switch (m - groups * R) {  // the rows left over from whole groups
      case 5:
        if constexpr (R > 5) row_group<5>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols);
        break;
      case 4: row_group<4>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      case 3: row_group<3>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      case 2: row_group<2>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      case 1: row_group<1>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      default: break;
    }
  }
}

// Rows per group for a panel format: kRows over float32 panels,
// kReducedRows over reduced ones.
template <typename PanelSet>
constexpr std::size_t kGroupRows = kReducedRows;
template <>
constexpr std::size_t kGroupRows<F32Panels> = kRows;

// gemm_groups over A's first `floats` values as they are, or for f16 panels
// times 2^112 in a_block (in place when A is a_block) when every |x| < 2^16:
// the one place that decides, for every kernel (see micro_kernel).
template <std::size_t G, typename PanelSet>
void gemm_groups_scaled(RowGroups a, std::size_t floats, std::size_t m, const PanelSet& b, std::size_t k,
                        std::size_t n, const float* bias, bool accumulate, float* c, std::size_t ldc) {
  if constexpr (std::is_same_v<PanelSet, ReducedPanels<WeightFormat::f16>>) {
    if (floats <= kBlockFloats && scale_up_for_f16(a.data, a_block, floats)) {
      gemm_groups<G>(RowGroups{a_block, a.group_stride, a.k_stride}, m, ScaledF16Panels{b}, k, n, bias, accumulate,
                     c, ldc);
      return;
    }
  }
  gemm_groups<G>(a, m, b, k, n, bias, accumulate, c, ldc);
}

// One row of A (decoding's projections, or a row block's last row), read
// where it is (k_stride 1) by the row kernel and the one-row micro-kernel:
// packed, it would be a group of R rows, R times its length written, mostly
// zeros, in every task of a parallel projection. (f16: a copy times 2^112.)
template <std::size_t R, typename PanelSet>
void gemm_row(const float* a, const PanelSet& b, std::size_t k, std::size_t n, const float* bias, bool accumulate,
              float* c) {
  gemm_groups_scaled<R>(RowGroups{a, 0, 1}, k, 1, b, k, n, bias, accumulate, c, 0);
}

// C rows [0, rows) of one block of A (a's rows, lda apart) in groups of G
// rows, every depth block in turn: packed, then gemm_groups.
template <std::size_t G, typename PanelSet>
void gemm_block(const float* a, std::size_t rows, std::size_t lda, const PanelSet& b, std::size_t k,
                std::size_t block_depth, std::size_t n, const float* bias, bool accumulate, float* c, std::size_t ldc) {
  // k == 0 still runs one (empty) depth block: C = bias, or C unchanged.
  for (std::size_t k0 = 0; k0 == 0 || k0 < k; k0 += block_depth) {
    const std::size_t depth = std::min(block_depth, k - k0);
    if (depth > 0) pack_groups<G>(a + k0, lda, rows, depth, a_block);
    // Later depth blocks add to what the earlier ones left in C: the same
    // additions in the same order as one pass over k, so the result is too.
    gemm_groups_scaled<G>(RowGroups{a_block, depth * G, G}, (rows + G - 1) / G * G * depth, rows, b.from_depth(k0),
                          depth, n, bias, accumulate || k0 > 0, c, ldc);
  }
}

// gemm over a plain A, packed block by block, for any panel format. The 1
// to 3 rows a block may have after its whole groups of R would run on a
// kernel of as many rows, whose few sums wait on one another's latency (at 2
// rows half the speed): they join the last whole group, and those 7 to 9
// rows run as groups of 4 or 5, at full speed or nearly (3 rows: 3/4).
template <typename PanelSet>
void gemm_blocked(const float* a, std::size_t m, std::size_t lda, const PanelSet& b, std::size_t k, std::size_t n,
                  const float* bias, bool accumulate, float* c, std::size_t ldc) {
  constexpr std::size_t R = kGroupRows<PanelSet>;
  const auto [block_depth, block_rows] = block_shape<R>(k);
  for (std::size_t i0 = 0; i0 < m; i0 += block_rows) {
    const std::size_t rows = std::min(block_rows, m - i0);
    const float* ai = a + i0 * lda;
    float* ci = c + i0 * ldc;
    if (rows == 1) {
      gemm_row<R>(ai, b, k, n, bias, accumulate, ci);
      continue;
    }
    const std::size_t tail = rows % R;
    if (tail == 0 || tail > 3 || rows < R || block_rows < 2 * R) {  // (two groups of 5 must fit the block)
      gemm_block<R>(ai, rows, lda, b, k, block_depth, n, bias, accumulate, ci, ldc);
      continue;
    }
    const std::size_t last = R + tail, first = rows - last;
    if (first > 0) gemm_block<R>(ai, first, lda, b, k, block_depth, n, bias, accumulate, ci, ldc);
    if (last <= 8)
      gemm_block<4>(ai + first * lda, last, lda, b, k, block_depth, n, bias, accumulate, ci + first * ldc, ldc);
    else
      gemm_block<5>(ai + first * lda, last, lda, b, k, block_depth, n, bias, accumulate, ci + first * ldc, ldc);
  }
}

template <WeightFormat F, typename E>
ReducedPanels<F> reduced_panels(const PackedWeight& w, const E* values, std::size_t p0) {
  const std::size_t panel_stride = w.k * kPanel;
  const std::size_t scale_stride = F == WeightFormat::int8 ? (w.k + kQuantBlock - 1) / kQuantBlock * kPanel : 0;
  const float* scales = F == WeightFormat::int8 ? w.scales.data() + p0 * scale_stride : nullptr;
  return {{values + p0 * panel_stride, scales}, panel_stride, scale_stride};
}


}  // namespace
namespace simd {

void gemm(RowGroups a, std::size_t m, Panels b, std::size_t k, std::size_t n, const float* bias,
          bool accumulate, float* c, std::size_t ldc) {
  gemm_groups<kRows>(a, m, F32Panels{b}, k, n, bias, accumulate, c, ldc);
}

void gemm(const float* a, std::size_t m, std::size_t lda, Panels b, std::size_t k, std::size_t n,
          const float* bias, bool accumulate, float* c, std::size_t ldc) {
  gemm_blocked(a, m, lda, F32Panels{b}, k, n, bias, accumulate, c, ldc);
}

void linear_panels(const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w, std::size_t p0,
                   std::size_t p1, const float* bias, float* y, std::size_t y_stride) {
  const std::size_t n = std::min(w.n, p1 * kPanel) - p0 * kPanel;
  switch (w.format) {
    case WeightFormat::f32:
      return gemm_blocked(x, m, x_stride, F32Panels{Panels{w.data.data() + p0 * w.k * kPanel, w.k * kPanel}}, w.k, n,
                          bias, false, y, y_stride);
    case WeightFormat::f16:
      return gemm_blocked(x, m, x_stride, reduced_panels<WeightFormat::f16>(w, w.half.data(), p0), w.k, n, bias,
                          false, y, y_stride);
    case WeightFormat::bf16:
      return gemm_blocked(x, m, x_stride, reduced_panels<WeightFormat::bf16>(w, w.half.data(), p0), w.k, n, bias,
                          false, y, y_stride);
    case WeightFormat::int8:
      return gemm_blocked(x, m, x_stride, reduced_panels<WeightFormat::int8>(w, w.q8.data(), p0), w.k, n, bias,
                          false, y, y_stride);
  }
}

void linear(const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w,
            const float* bias, float* y, std::size_t y_stride) {
  linear_panels(x, m, x_stride, w, 0, (w.n + kPanel - 1) / kPanel, bias, y, y_stride);
}

}  // namespace simd
}  // namespace mha
