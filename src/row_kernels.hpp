// Decoding's single-row kernels (m = 1), for gemm.cpp only: one row of A
// against four whole weight panels at a time, in every weight format,
// float32 C's values read and written in place. Internal: no SIMD type
// leaves the kernels' files.
#pragma once

#include <cmath>
#include <cstddef>

#include "kernels.hpp"
#include "reduced_panel.hpp"
#include "simd_batch.hpp"

namespace mha::single_row {
using namespace simd_lanes;
using namespace panel_values;

// One row of A (m = 1: decoding's projections) against kRowPanels whole
// panels at once, C's init in place: 2 x kRowPanels independent sums per k
// step, where one panel's two would leave each multiply-add waiting for the
// last, and one broadcast of A's value for all of them.
constexpr std::size_t kRowPanels = 4;

// row_kernel for int8: each block of kQuantBlock k rows sums codes times
// A's values in registers, and only then its scales multiply the sums into
// C. One multiply per block instead of one per k row, and no scale loads in
// the loop. kScaled (relaxed builds): two k rows at a time, the codes times
// 2^24 (int8_codes_times_2p24) against A's values times 2^-24: each product
// is the same real number, so the sums are bit for bit the same, as long as
// no x * 2^-24 falls below 2^-126: the caller checks that every x is 0, NaN
// or at least 2^-102 in magnitude (int8_row_scales).
#if defined(__wasm_relaxed_simd__)
inline volatile float int8_scale_down = 0x1p-24f;  // held, not rebuilt (see Exp2Constants)
#endif
template <bool kScaled>
__attribute__((noinline)) void row_kernel_int8(const float* pa, std::size_t a_step,
                                               const ReducedPanel<WeightFormat::int8>* pb, std::size_t depth,
                                               float* c) {
  constexpr std::size_t P = kRowPanels;
  ReducedPanel<WeightFormat::int8> at[P];
  for (std::size_t p = 0; p < P; ++p) at[p] = pb[p];
#if defined(__wasm_relaxed_simd__)
  const Int8Swizzles swizzles = int8_swizzles();
  const float down = int8_scale_down;
#else
  static_assert(!kScaled, "two rows at a time need relaxed SIMD's swizzle");
#endif
  for (std::size_t k0 = 0; k0 < depth; k0 += kQuantBlock) {
    const std::size_t n = std::min(kQuantBlock, depth - k0);
    batch acc[P][kPanelBatches];
    for (std::size_t p = 0; p < P; ++p)
      for (std::size_t j = 0; j < kPanelBatches; ++j) acc[p][j] = batch(0.0f);
    std::size_t k = 0;
#if defined(__wasm_relaxed_simd__)
    if constexpr (kScaled)
      for (; k + 2 <= n; k += 2, pa += 2 * a_step) {
        const batch x0(pa[0] * down), x1(pa[a_step] * down);
        for (std::size_t p = 0; p < P; ++p) {
          const v128_t rows = wasm_v128_load(at[p].w + k * kPanel);
          for (std::size_t j = 0; j < kPanelBatches; ++j)
            acc[p][j] = madd(x0, int8_codes_times_2p24(rows, swizzles, j), acc[p][j]);
          for (std::size_t j = 0; j < kPanelBatches; ++j)
            acc[p][j] = madd(x1, int8_codes_times_2p24(rows, swizzles, kPanelBatches + j), acc[p][j]);
          keep_order();
        }
      }
#endif
    for (; k < n; ++k, pa += a_step) {  // (kScaled: an odd block's last row, unscaled)
      const batch x(*pa);
      for (std::size_t p = 0; p < P; ++p) {
        batch w[kPanelBatches];
        load_codes(at[p].w + k * kPanel, w);
        for (std::size_t j = 0; j < kPanelBatches; ++j) acc[p][j] = madd(x, w[j], acc[p][j]);
        keep_order();
      }
    }
    for (std::size_t p = 0; p < P; ++p) {
      for (std::size_t j = 0; j < kPanelBatches; ++j) {
        float* cj = c + p * kPanel + j * kLanes;
        madd(acc[p][j], batch::load_unaligned(at[p].scales + j * kLanes), batch::load_unaligned(cj)).store_unaligned(cj);
      }
      at[p].w += n * kPanel;
      at[p].scales += kPanel;
    }
  }
}

// kScaledUp (f16): A's values were packed times 2^112 (gemm_blocked) and the
// weights' conversion skips its multiply by 2^112 (load_f16_scaled_down):
// the same products, and no multiply per weight batch. (int8: see
// row_kernel_int8.)
template <WeightFormat F, bool kScaledUp = false>
__attribute__((noinline)) void row_kernel(const float* pa, std::size_t a_step, const ReducedPanel<F>* pb,
                                          std::size_t depth, float* c) {
  static_assert(!kScaledUp || F == WeightFormat::f16 || F == WeightFormat::int8, "f16 and int8 have scaled paths");
  if constexpr (F == WeightFormat::int8) {
    row_kernel_int8<kScaledUp>(pa, a_step, pb, depth, c);
  } else {
    constexpr std::size_t P = kRowPanels;
    batch acc[P][kPanelBatches];
    load_tile(acc, c, kPanel);
    const auto constants = loop_constants<F>();
    // The panels' addresses as locals: read through pb, they were reloaded
    // from memory on every k step (keep_order's barrier), four loads and four
    // adds a step in V8's code.
    decltype(pb[0].w) panel[P];
    for (std::size_t p = 0; p < P; ++p) panel[p] = pb[p].w;
    // f32, f16 and bf16 have no blocks: the whole depth in one run.
    for (std::size_t k = 0; k < depth; ++k, pa += a_step) {
      const batch x(*pa);
      for (std::size_t p = 0; p < P; ++p) {
        batch w[kPanelBatches];
        if constexpr (kScaledUp) load_f16_scaled_down(panel[p] + k * kPanel, constants, w);
        else load_values(panel[p] + k * kPanel, nullptr, constants, w, static_cast<ReducedPanel<F>*>(nullptr));
        for (std::size_t j = 0; j < kPanelBatches; ++j) acc[p][j] = madd(x, w[j], acc[p][j]);
        keep_order();
      }
    }
    store_tile(acc, c, kPanel);
  }
}

#if defined(__wasm_relaxed_simd__)
// Whether a single row of A may take row_kernel_int8's scaled path: no x
// with 0 < |x| < 2^-102, whose x * 2^-24 would be subnormal.
inline bool int8_row_scales(RowGroups a, std::size_t k) {
  for (std::size_t kk = 0; kk < k; ++kk) {
    const float x = a.data[kk * a.k_stride];
    if (x != 0.0f && std::fabs(x) < 0x1p-102f) return false;
  }
  return true;
}
#endif

}  // namespace mha::single_row
