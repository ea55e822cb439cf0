// The GEMM's micro-kernels, for gemm.cpp only: one row group of A (ROWS
// rows, packed) against one 8-column panel of weights in any format, C's
// ROWS x kPanel values in registers down the whole depth. Internal: no SIMD
// type leaves the kernels' files.
#pragma once

#include <cstddef>

#include "kernels.hpp"
#include "reduced_panel.hpp"
#include "simd_batch.hpp"

namespace mha::micro {
using namespace simd_lanes;
using namespace panel_values;

// C[ROWS, kPanel] = A[ROWS, depth] . panel[depth, kPanel] + init, for one row
// group (pa: its row 0 at k = 0, a_step floats per k) and one panel. `init`
// is ROWS x kPanel values, row r at init + r * init_stride (init_stride 0
// broadcasts one bias row); C rows are ldc apart.
//
// Never inlined, one copy per ROWS, and nothing but this loop: V8 compiles
// each into one known loop, checked spill-free by bench/codegen.js. Why so
// bare: V8 (Node 20) unrolls innermost wasm loops of up to 50 nodes per level
// of nesting, and inlined into gemm's loops this one qualified; the unrolled
// copy had its load-splats scheduled together and spilled accumulators (L =
// 512 ran far slower). Even un-nested, which order V8 gives the loads
// depends on the code around the loop (a partial-panel store after it was
// enough to spill), so partial panels go through row_group's buffer. A call
// per row group and panel costs about 2% at depth 64 (attention's K . Q^T).
// (Node 24's V8 inlines WebAssembly functions itself, noinline or not: copies
// of this loop also appear inside their callers, some unrolled three times.
// codegen.js checks every copy at one k step per iteration; in this
// project's listings the unrolled ones kept every value in a register too.)
template <std::size_t ROWS>
__attribute__((noinline)) void micro_kernel(const float* pa, std::size_t a_step, const float* pb, std::size_t depth,
                                            const float* init, std::size_t init_stride, float* c, std::size_t ldc) {
  batch acc[ROWS][kPanelBatches];
  load_tile(acc, init, init_stride);
  for (const float* end = pb + depth * kPanel; pb != end; pb += kPanel, pa += a_step) {
    batch w[kPanelBatches];
    for (std::size_t j = 0; j < kPanelBatches; ++j) w[j] = batch::load_unaligned(pb + j * kLanes);
    for (std::size_t r = 0; r < ROWS; ++r) {
      const batch x(pa[r]);
      for (std::size_t j = 0; j < kPanelBatches; ++j) acc[r][j] = madd(x, w[j], acc[r][j]);
      keep_order();
    }
  }
  store_tile(acc, c, ldc);
}

// micro_kernel over a reduced panel: the same loop, each k row's weights
// converted as they are loaded. int8 walks its blocks of kQuantBlock rows,
// each with its scales. kScaledUp (f16 only): A's values were packed times
// 2^112 and the conversion skips its multiply by 2^112, as in row_kernel
// (row_kernels.hpp): the same products, and one multiply and one held constant fewer
// per k step, which is what keeps the accumulators out of the stack.
template <std::size_t ROWS, WeightFormat F, bool kScaledUp = false>
__attribute__((noinline)) void micro_kernel(const float* pa, std::size_t a_step, ReducedPanel<F> pb,
                                            std::size_t depth, const float* init, std::size_t init_stride,
                                            float* c, std::size_t ldc) {
  batch acc[ROWS][kPanelBatches];
  load_tile(acc, init, init_stride);
  const std::size_t block = ReducedPanel<F>::kBlock == 0 ? depth : ReducedPanel<F>::kBlock;
  auto pw = pb.w;
  const float* s = pb.scales;
  const auto constants = loop_constants<F>();
  for (std::size_t k0 = 0; k0 < depth; k0 += block) {
    for (const auto* end = pw + std::min(block, depth - k0) * kPanel; pw != end; pw += kPanel, pa += a_step) {
      batch w[kPanelBatches];
      if constexpr (kScaledUp) load_f16_scaled_down(pw, constants, w);
      else load_values(pw, s, constants, w, static_cast<ReducedPanel<F>*>(nullptr));
      for (batch& wj : w) keep_value(wj);
      for (std::size_t r = 0; r < ROWS; ++r) {
        const batch x(pa[r]);
        for (std::size_t j = 0; j < kPanelBatches; ++j) acc[r][j] = madd(x, w[j], acc[r][j]);
        keep_order();
      }
    }
    if constexpr (ReducedPanel<F>::kBlock != 0) s += kPanel;  // the next block's scales (others have none)
  }
  store_tile(acc, c, ldc);
}

}  // namespace mha::micro
