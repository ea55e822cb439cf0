// The SIMD primitives, written once on xsimd::batch<float>. xsimd picks the
// instruction set at compile time: f32x4 under `em++ -msimd128`, SSE/AVX
// natively. Every loop runs whole batches, then a scalar tail.
#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>
#if defined(__wasm_relaxed_simd__)
#include <wasm_simd128.h>
#endif

#include "kernels.hpp"

namespace mha {
namespace {

// xsimd's choice for the compile flags (f32x4 under -msimd128, SSE2 natively
// by default), or MHA_SIMD_ARCH: the native benchmark builds the same 4-wide
// kernels with AVX's three-operand encoding, the instructions V8 emits for
// f32x4, and with FMA as well (MHA_NATIVE_SIMD in CMakeLists.txt).
#ifdef MHA_SIMD_ARCH
namespace arch {
using sse4_2 = xsimd::sse4_2;
using fma3_sse4_2 = xsimd::fma3<xsimd::sse4_2>;
}  // namespace arch
using batch = xsimd::batch<float, arch::MHA_SIMD_ARCH>;
#else
using batch = xsimd::batch<float>;
#endif
constexpr std::size_t kLanes = batch::size;
constexpr std::size_t kPanel = PackedWeight::kPanel;
static_assert(kPanel % kLanes == 0, "a weight panel must be whole batches");
constexpr std::size_t kPanelBatches = kPanel / kLanes;

// a * b + c. With relaxed SIMD (em++ -mrelaxed-simd) one f32x4.relaxed_madd,
// fused where the CPU has FMA: LLVM never contracts a multiply and an add
// into it, so it is written here. Otherwise xsimd's fma, which is a multiply
// and an add in SIMD128, and fused natively only when built for FMA.
inline batch madd(batch a, batch b, batch c) {
#if defined(__wasm_relaxed_simd__)
  return batch(wasm_f32x4_relaxed_madd(a, b, c));
#else
  return xsimd::fma(a, b, c);
#endif
}

// Rows per micro-kernel call: kGemmRows x kPanelBatches = 5 x 2 accumulators,
// plus 2 weight batches, 1 broadcast and 1 product: 14 live f32x4 values, one
// under the 15 xmm registers V8 allocates (the 16th is its scratch). Each k
// step is 2 loads, 5 load-splats and 10 mul + 10 add: more arithmetic per
// load and per loop step than 4 x 8, and faster (bench/limits.md, "Kernel
// shapes").
constexpr std::size_t kRows = kGemmRows;
// Rows of A per cache block (whole row groups): they stay in L2 while every
// panel of B streams past them once, so the weights stream once per block.
// 160 rows: a 128-row projection is one block, not 80 + 48 (bench/limits.md).
constexpr std::size_t kBlockRows = 32 * kRows;
// Depth (k) of a cache block: a block of A is packed into kBlockRows x kDepth
// floats (160 KiB, within the 512 KiB L2 of the smallest core measured), and
// a panel's slice, kDepth x kPanel floats (8 KiB), stays in L1 while every
// row group of the block reads it.
constexpr std::size_t kDepth = 256;

// Keeps the compiler from moving memory accesses across this point. Why: left
// alone, LLVM hoists every load-splat of a k step above its multiplies, which
// puts all five broadcasts in registers at once; V8, which allocates
// registers in the order the WebAssembly gives, then spills accumulators on
// every step (seen in --print-wasm-code; bench/limits.md has what it cost).
// One barrier per row keeps a broadcast's life to its two multiplies. Only
// for WebAssembly: native compilers allocate the registers themselves, and
// there the barrier made GCC reload operands (native 512^3 GEMM: 21 -> 14
// GFLOP/s).
#if defined(__wasm__)
inline void keep_order() { asm volatile("" ::: "memory"); }
#else
inline void keep_order() {}
#endif

// The current block of A in row groups, RowGroups{a_block, depth * kRows,
// kRows}. Per thread: each pool worker packs its own.
alignas(16) thread_local float a_block[kBlockRows * kDepth];

// A micro-kernel's ROWS x kPanel accumulators from init (rows init_stride
// apart), and back to C (rows ldc apart).
template <std::size_t ROWS>
inline void load_tile(batch (&acc)[ROWS][kPanelBatches], const float* init, std::size_t init_stride) {
  for (std::size_t r = 0; r < ROWS; ++r)
    for (std::size_t j = 0; j < kPanelBatches; ++j) acc[r][j] = batch::load_unaligned(init + r * init_stride + j * kLanes);
}
template <std::size_t ROWS>
inline void store_tile(const batch (&acc)[ROWS][kPanelBatches], float* c, std::size_t ldc) {
  for (std::size_t r = 0; r < ROWS; ++r)
    for (std::size_t j = 0; j < kPanelBatches; ++j) acc[r][j].store_unaligned(c + r * ldc + j * kLanes);
}

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

// One k row of a reduced panel (kPanel values) as kPanelBatches float
// batches: the values weight_formats.cpp's conversions give, dequantized in
// registers. f16 through its bits: sign-extended and shifted left by 13,
// the sign lands in bit 31 and exponent and mantissa in a float's; clearing
// bits 28-30 (copies of the sign) leaves the value times 2^-112, which one
// exact multiply fixes, subnormals included (f16 weights are finite: see
// first_unstorable). bf16 is a float's top half. int8: q times its block's
// column scales.
template <WeightFormat F>
struct ReducedPanel;
template <>
struct ReducedPanel<WeightFormat::f32> {  // float32 panels, for row_kernel
  const float* w;
  const float* scales;  // unused
  static constexpr std::size_t kBlock = 0;
};
template <>
struct ReducedPanel<WeightFormat::f16> {
  const std::uint16_t* w;
  const float* scales;  // unused
  static constexpr std::size_t kBlock = 0;
};
template <>
struct ReducedPanel<WeightFormat::bf16> {
  const std::uint16_t* w;
  const float* scales;  // unused
  static constexpr std::size_t kBlock = 0;
};
template <>
struct ReducedPanel<WeightFormat::int8> {
  const std::int8_t* w;
  const float* scales;  // kPanel per block of kQuantBlock k rows
  static constexpr std::size_t kBlock = kQuantBlock;
};

struct NoConstants {};

inline void load_values(const float* w, const float*, NoConstants, batch* out, ReducedPanel<WeightFormat::f32>*) {
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch::load_unaligned(w + j * kLanes);
}

#if defined(__wasm_simd128__)
// The f16 conversion's two constants, as values the loop keeps in registers:
// written as constants, V8 rebuilds each from immediates on every k step.
struct F16Constants {
  v128_t keep, rescale;
};
volatile std::int32_t f16_keep_bits = std::int32_t(0x8fffffffu);
volatile float f16_rescale = 0x1p112f;
inline F16Constants f16_constants() { return {wasm_i32x4_splat(f16_keep_bits), wasm_f32x4_splat(f16_rescale)}; }

inline void load_values(const std::uint16_t* w, const float*, const F16Constants& k, batch* out,
                        ReducedPanel<WeightFormat::f16>*) {
  for (std::size_t j = 0; j < kPanelBatches; ++j)
    out[j] = batch(wasm_f32x4_mul(wasm_v128_and(wasm_i32x4_shl(wasm_i32x4_load16x4(w + j * kLanes), 13), k.keep), k.rescale));
}
inline void load_values(const std::uint16_t* w, const float*, NoConstants, batch* out, ReducedPanel<WeightFormat::bf16>*) {
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch(wasm_i32x4_shl(wasm_u32x4_load16x4(w + j * kLanes), 16));
}
inline void load_values(const std::int8_t* w, const float* s, NoConstants, batch* out, ReducedPanel<WeightFormat::int8>*) {
  static_assert(kPanel == 8, "one 8-byte load is a k row of a panel");
  const v128_t q = wasm_i16x8_load8x8(w);
  out[0] = batch(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(q)), wasm_v128_load(s)));
  out[1] = batch(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(q)), wasm_v128_load(s + kLanes)));
}
#else
// Natively (tests, fuzzing): the scalar conversions, the same values.
template <typename E, typename Constants, WeightFormat F>
inline void load_values(const E* w, const float* s, const Constants&, batch* out, ReducedPanel<F>*) {
  alignas(16) float v[kPanel];
  for (std::size_t c = 0; c < kPanel; ++c) {
    if constexpr (F == WeightFormat::f16) v[c] = f16_value(w[c]);
    else if constexpr (F == WeightFormat::bf16) v[c] = bf16_value(w[c]);
    else v[c] = float(w[c]) * s[c];
  }
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch::load_aligned(v + j * kLanes);
}
#endif

// What a format's conversion keeps in registers through the loop.
template <WeightFormat F>
inline auto loop_constants() {
#if defined(__wasm_simd128__)
  if constexpr (F == WeightFormat::f16) return f16_constants();
  else return NoConstants{};
#else
  return NoConstants{};
#endif
}

// micro_kernel over a reduced panel: the same loop, each k row's weights
// converted as they are loaded. int8 walks its blocks of kQuantBlock rows,
// each with its scales.
template <std::size_t ROWS, WeightFormat F>
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
      load_values(pw, s, constants, w, static_cast<ReducedPanel<F>*>(nullptr));
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

// One row of A (m = 1: decoding's projections) against kRowPanels whole
// panels at once, C's init in place: 2 x kRowPanels independent sums per k
// step, where one panel's two would leave each multiply-add waiting for the
// last, and one broadcast of A's value for all of them.
constexpr std::size_t kRowPanels = 4;

// int8 codes of one k row of a panel as floats, unscaled.
inline void load_codes(const std::int8_t* w, batch* out) {
#if defined(__wasm_simd128__)
  const v128_t q = wasm_i16x8_load8x8(w);
  out[0] = batch(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(q)));
  out[1] = batch(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(q)));
#else
  alignas(16) float v[kPanel];
  for (std::size_t c = 0; c < kPanel; ++c) v[c] = float(w[c]);
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch::load_aligned(v + j * kLanes);
#endif
}

// row_kernel for int8: each block of kQuantBlock k rows sums codes times
// A's values in registers, and only then its scales multiply the sums into
// C. One multiply per block instead of one per k row, and no scale loads in
// the loop.
__attribute__((noinline)) void row_kernel_int8(const float* pa, std::size_t a_step,
                                               const ReducedPanel<WeightFormat::int8>* pb, std::size_t depth,
                                               float* c) {
  constexpr std::size_t P = kRowPanels;
  ReducedPanel<WeightFormat::int8> at[P];
  for (std::size_t p = 0; p < P; ++p) at[p] = pb[p];
  for (std::size_t k0 = 0; k0 < depth; k0 += kQuantBlock) {
    const std::size_t n = std::min(kQuantBlock, depth - k0);
    batch acc[P][kPanelBatches];
    for (std::size_t p = 0; p < P; ++p)
      for (std::size_t j = 0; j < kPanelBatches; ++j) acc[p][j] = batch(0.0f);
    for (std::size_t k = 0; k < n; ++k, pa += a_step) {
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

template <WeightFormat F>
__attribute__((noinline)) void row_kernel(const float* pa, std::size_t a_step, const ReducedPanel<F>* pb,
                                          std::size_t depth, float* c) {
  if constexpr (F == WeightFormat::int8) return row_kernel_int8(pa, a_step, pb, depth, c);
  constexpr std::size_t P = kRowPanels;
  batch acc[P][kPanelBatches];
  load_tile(acc, c, kPanel);
  const auto constants = loop_constants<F>();
  const std::size_t block = ReducedPanel<F>::kBlock == 0 ? depth : ReducedPanel<F>::kBlock;
  ReducedPanel<F> at[P];
  for (std::size_t p = 0; p < P; ++p) at[p] = pb[p];
  for (std::size_t k0 = 0; k0 < depth; k0 += block) {
    const std::size_t n = std::min(block, depth - k0);
    for (std::size_t k = 0; k < n; ++k, pa += a_step) {
      const batch x(*pa);
      for (std::size_t p = 0; p < P; ++p) {
        batch w[kPanelBatches];
        load_values(at[p].w + k * kPanel, at[p].scales, constants, w, static_cast<ReducedPanel<F>*>(nullptr));
        for (std::size_t j = 0; j < kPanelBatches; ++j) acc[p][j] = madd(x, w[j], acc[p][j]);
        keep_order();
      }
    }
    for (std::size_t p = 0; p < P; ++p) {
      at[p].w += n * kPanel;
      if constexpr (ReducedPanel<F>::kBlock != 0) at[p].scales += kPanel;
    }
  }
  store_tile(acc, c, kPanel);
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
  // k0 is a multiple of kQuantBlock (kDepth is).
  ReducedPanels from_depth(std::size_t k0) const {
    const float* s = ReducedPanel<F>::kBlock ? first.scales + k0 / kQuantBlock * kPanel : first.scales;
    return {{first.w + k0 * kPanel, s}, panel_stride, scale_stride};
  }
};

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

// 2^x for a batch with x <= 0 (a score minus its column's max; scores are in
// base-2 units, see kLog2e), to under 2 ulp: x = n + f with n an integer and
// |f| <= 1/2, 2^f by a degree-6 polynomial (a relative-error minimax fit with
// p(0) = 1, so the max itself weighs exactly 1; scripts/fit_exp2.cpp prints
// these coefficients), 2^n put straight into the exponent bits. Base 2
// because e^x needs x / ln 2 first and then an x - n ln 2 in two parts: 19
// operations here against Cephes' expf's 25, in the loop the softmax spends
// its time in. xsimd::exp is exact too but, in its WebAssembly build, took
// ~80 cycles a batch. Below 2^-126 (FLT_MIN) the result is 0 exactly (so a
// masked score's weight is exactly 0, as in PyTorch); NaN stays NaN. x <= 0
// is why there is no clamp at the top: a clamp cost a NaN-safe min, 7 x86
// instructions in V8, and one more constant than the 16 xmm registers hold
// along with the loop's own values.
inline batch exp2_batch(batch x) {
  const batch lowest(-126.0f);
  // 1.5 * 2^23 + 127: adding it rounds x to an integer n and leaves n + 127,
  // the biased exponent of 2^n, in the low bits of t.
  const batch magic(12583039.0f);
  const batch t = x + magic;
  const batch f = x - (t - magic);  // |f| <= 1/2
  batch p(1.546144485e-4f);
  p = madd(p, f, batch(1.340042800e-3f));
  p = madd(p, f, batch(9.618056938e-3f));
  p = madd(p, f, batch(5.550327152e-2f));
  p = madd(p, f, batch(2.402265072e-1f));
  p = madd(p, f, batch(6.931471825e-1f));
  p = madd(p, f, batch(1.0f));
  // 2^n: shifting t's bits left by 23 drops everything above n + 127 and
  // puts n + 127 in the exponent field.
  const batch scale = xsimd::bitwise_cast<float>(xsimd::bitwise_cast<std::int32_t>(t) << 23);
  // Below FLT_MIN (and -inf, a masked score, whose f is NaN): 0 exactly, by
  // clearing the bits. A NaN x compares false and stays NaN.
  return xsimd::bitwise_andnot(p * scale, batch((x < lowest).data));
}

// softmax_shift per lane.
inline batch softmax_shift(batch max) {
  return xsimd::select(max == batch(-std::numeric_limits<float>::infinity()), batch(0.0f), max);
}

// softmax_columns on NB batches of columns from c0: their running maxes and
// sums stay in registers down the whole block, and no value crosses lanes.
template <std::size_t NB>
void softmax_column_batches(float* t, std::size_t ldt, std::size_t keys, std::size_t c0, float* m, float* l,
                            float* rescale) {
  const batch zero(0.0f);
  batch m_new[NB], shift[NB], sum[NB];
  for (std::size_t j = 0; j < NB; ++j) m_new[j] = batch::load_unaligned(m + c0 + j * kLanes);
  for (std::size_t r = 0; r < keys; ++r)
    for (std::size_t j = 0; j < NB; ++j) {
      const batch x = batch::load_unaligned(t + r * ldt + c0 + j * kLanes);
      m_new[j] = xsimd::select(m_new[j] < x, x, m_new[j]);  // a NaN x is never taken
    }
  for (std::size_t j = 0; j < NB; ++j) {
    shift[j] = softmax_shift(m_new[j]);
    sum[j] = zero;
  }
  for (std::size_t r = 0; r < keys; ++r)
    for (std::size_t j = 0; j < NB; ++j) {
      float* p = t + r * ldt + c0 + j * kLanes;
      const batch e = exp2_batch(batch::load_unaligned(p) - shift[j]);
      e.store_unaligned(p);
      sum[j] += e;
    }
  for (std::size_t j = 0; j < NB; ++j) {
    const std::size_t c = c0 + j * kLanes;
    const batch alpha = exp2_batch(batch::load_unaligned(m + c) - shift[j]);
    alpha.store_unaligned(rescale + c);
    madd(batch::load_unaligned(l + c), alpha, sum[j]).store_unaligned(l + c);
    m_new[j].store_unaligned(m + c);
  }
}

// narrow_scores and narrow_softmax_values for one head width D, so that the
// D query batches (or D accumulators) are named values the compiler keeps in
// registers: at most 6 + 2 live f32x4 values, besides the exponential's.
// The barrier after each multiply-add keeps LLVM from hoisting a key's D
// load-splats together (see keep_order).
template <std::size_t D>
void narrow_scores_of_width(const float* qt, const float* k, std::size_t k_stride, std::size_t keys,
                            float* scores) {
  batch q[D];
  for (std::size_t t = 0; t < D; ++t) q[t] = batch::load_unaligned(qt + t * kLanes);
  for (std::size_t j = 0; j < keys; ++j, k += k_stride, scores += kLanes) {
    batch s = q[0] * batch(k[0]);
    keep_order();
    for (std::size_t t = 1; t < D; ++t) {
      s = madd(q[t], batch(k[t]), s);
      keep_order();
    }
    s.store_unaligned(scores);
  }
}

template <std::size_t D>
void narrow_softmax_values_of_width(float* p, std::size_t keys, const float* v, std::size_t v_stride, float fill,
                                    float* m, float* l, float* o) {
  const batch neg_inf(-std::numeric_limits<float>::infinity()), zero(0.0f);
  batch max = neg_inf;
  for (std::size_t j = 0; j < keys; ++j) {
    const batch x = batch::load_unaligned(p + j * kLanes);
    max = xsimd::select(max < x, x, max);  // a NaN x is never taken
  }
  const batch shift = softmax_shift(max);
  // The exponentials and P . V in loops of their own: fused, the D
  // accumulators, the polynomial's constants and its temporaries outgrew
  // the registers, and ran slower (bench/limits.md).
  batch sum = zero;
  for (std::size_t j = 0; j < keys; ++j) {
    const batch e = exp2_batch(batch::load_unaligned(p + j * kLanes) - shift);
    e.store_unaligned(p + j * kLanes);
    sum += e;
  }
  batch acc[D];
  for (std::size_t t = 0; t < D; ++t) acc[t] = zero;
  for (std::size_t j = 0; j < keys; ++j, v += v_stride) {
    const batch pj = batch::load_unaligned(p + j * kLanes);
    for (std::size_t t = 0; t < D; ++t) {
      acc[t] = madd(pj, batch(v[t]), acc[t]);
      keep_order();
    }
  }
  max.store_unaligned(m);
  sum.store_unaligned(l);
  const auto none = sum == zero;  // every key blocked (or none at all)
  const batch inv = batch(1.0f) / sum, fills(fill);
  for (std::size_t t = 0; t < D; ++t) xsimd::select(none, fills, acc[t] * inv).store_unaligned(o + t * kLanes);
}

static_assert(kNarrowQueries == kLanes, "a narrow block is one query per lane");
static_assert(kNarrowWidth == 6, "the switches below cover widths 1 to 6");

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
  batch acc(0.0f);
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const batch e = exp2_batch(batch::load_unaligned(x + i) - vs);
    e.store_unaligned(x + i);
    acc += e;
  }
  if (i < n) {  // the tail through the same polynomial, padded with exp(-inf) = 0
    alignas(16) float tail[kLanes];
    std::fill(tail, tail + kLanes, -std::numeric_limits<float>::infinity());
    std::copy(x + i, x + n, tail);
    const batch e = exp2_batch(batch::load_aligned(tail) - vs);
    e.store_aligned(tail);
    std::copy(tail, tail + (n - i), x + i);
    acc += e;
  }
  return xsimd::reduce_add(acc);
}

void pack_row_groups(const float* a, std::size_t lda, std::size_t rows, std::size_t depth, float* dst) {
  static_assert(kRows == kLanes + 1, "the packing below transposes 4 rows and copies the fifth");
  for (std::size_t g = 0; g * kRows < rows; ++g, dst += depth * kRows) {
    const float* src = a + g * kRows * lda;
    const std::size_t in_group = std::min(kRows, rows - g * kRows);
    std::size_t kk = 0;
    if (in_group == kRows)  // whole groups: rows 0-3 by 4 x 4 register transposes, row 4 as it is
      for (; kk + kLanes <= depth; kk += kLanes) {
        batch tile[kLanes];
        for (std::size_t r = 0; r < kLanes; ++r) tile[r] = batch::load_unaligned(src + r * lda + kk);
        xsimd::transpose(tile, tile + kLanes);
        for (std::size_t j = 0; j < kLanes; ++j) {
          tile[j].store_unaligned(dst + (kk + j) * kRows);
          dst[(kk + j) * kRows + kLanes] = src[kLanes * lda + kk + j];
        }
      }
    for (; kk < depth; ++kk)  // the rest, one element at a time; missing rows read 0
      for (std::size_t r = 0; r < kRows; ++r) dst[kk * kRows + r] = r < in_group ? src[r * lda + kk] : 0.0f;
  }
}

void softmax_columns(float* t, std::size_t ldt, std::size_t keys, std::size_t cols, float* m, float* l,
                     float* rescale) {
  std::size_t c0 = 0;
  for (; c0 + kPanel <= cols; c0 += kPanel) softmax_column_batches<kPanelBatches>(t, ldt, keys, c0, m, l, rescale);
  for (; c0 < cols; c0 += kLanes) softmax_column_batches<1>(t, ldt, keys, c0, m, l, rescale);
}

}  // namespace simd
namespace {

// gemm over row groups, for any panel format.
template <typename PanelSet>
void gemm_groups(RowGroups a, std::size_t m, const PanelSet& b, std::size_t k, std::size_t n, const float* bias,
                 bool accumulate, float* c, std::size_t ldc) {
  const std::size_t panels = (n + kPanel - 1) / kPanel, groups = m / kRows;
  std::size_t p = 0;
  if (m == 1)  // whole panels kRowPanels at a time; C's row is contiguous
    for (; p + kRowPanels <= n / kPanel; p += kRowPanels) {
      float* cp = c + p * kPanel;
      if (!accumulate) {
        if (bias != nullptr) std::copy(bias + p * kPanel, bias + (p + kRowPanels) * kPanel, cp);
        else std::fill(cp, cp + kRowPanels * kPanel, 0.0f);
      }
      decltype(as_panel(b.panel(0))) pb[kRowPanels];
      for (std::size_t q = 0; q < kRowPanels; ++q) pb[q] = as_panel(b.panel(p + q));
      row_kernel(a.data, a.k_stride, pb, k, cp);
    }
  for (; p < panels; ++p) {
    const auto pb = b.panel(p);
    const std::size_t col0 = p * kPanel;
    const std::size_t cols = std::min(kPanel, n - col0);
    alignas(16) float bias_padded[kPanel] = {};
    if (bias != nullptr && !accumulate) std::copy(bias + col0, bias + col0 + cols, bias_padded);
    float* cp = c + col0;
    for (std::size_t g = 0; g < groups; ++g)
      row_group<kRows>(a.data + g * a.group_stride, a.k_stride, pb, k, bias_padded, accumulate,
                       cp + g * kRows * ldc, ldc, cols);
    const float* pa = a.data + groups * a.group_stride;
    float* cr = cp + groups * kRows * ldc;
    switch (m - groups * kRows) {  // the rows left over from whole groups
      case 4: row_group<4>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      case 3: row_group<3>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      case 2: row_group<2>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      case 1: row_group<1>(pa, a.k_stride, pb, k, bias_padded, accumulate, cr, ldc, cols); break;
      default: break;
    }
  }
}

// gemm over a plain A, packed block by block, for any panel format.
template <typename PanelSet>
void gemm_blocked(const float* a, std::size_t m, std::size_t lda, const PanelSet& b, std::size_t k, std::size_t n,
                  const float* bias, bool accumulate, float* c, std::size_t ldc) {
  for (std::size_t i0 = 0; i0 < m; i0 += kBlockRows) {
    const std::size_t rows = std::min(kBlockRows, m - i0);
    // A single row is all of its depth at once when it fits the block: it
    // is in L1 anyway, and each weight panel then streams in one run.
    const std::size_t block_depth = rows == 1 && k * kRows <= kBlockRows * kDepth ? std::max<std::size_t>(k, 1) : kDepth;
    // k == 0 still runs one (empty) depth block: C = bias, or C unchanged.
    for (std::size_t k0 = 0; k0 == 0 || k0 < k; k0 += block_depth) {
      const std::size_t depth = std::min(block_depth, k - k0);
      if (depth > 0) simd::pack_row_groups(a + i0 * lda + k0, lda, rows, depth, a_block);
      // Later depth blocks add to what the earlier ones left in C: the same
      // additions in the same order as one pass over k, so the result is too.
      gemm_groups(RowGroups{a_block, depth * kRows, kRows}, rows, b.from_depth(k0), depth, n, bias,
                  accumulate || k0 > 0, c + i0 * ldc, ldc);
    }
  }
}

static_assert(kDepth % kQuantBlock == 0, "a depth block is whole int8 blocks");

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
  gemm_groups(a, m, F32Panels{b}, k, n, bias, accumulate, c, ldc);
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

void narrow_scores(const float* qt, std::size_t d, const float* k, std::size_t k_stride, std::size_t keys,
                   float* scores) {
  switch (d) {
    case 1: return narrow_scores_of_width<1>(qt, k, k_stride, keys, scores);
    case 2: return narrow_scores_of_width<2>(qt, k, k_stride, keys, scores);
    case 3: return narrow_scores_of_width<3>(qt, k, k_stride, keys, scores);
    case 4: return narrow_scores_of_width<4>(qt, k, k_stride, keys, scores);
    case 5: return narrow_scores_of_width<5>(qt, k, k_stride, keys, scores);
    default: return narrow_scores_of_width<6>(qt, k, k_stride, keys, scores);
  }
}

void narrow_softmax_values(float* p, std::size_t keys, const float* v, std::size_t v_stride, std::size_t d,
                           float fill, float* m, float* l, float* o) {
  switch (d) {
    case 1: return narrow_softmax_values_of_width<1>(p, keys, v, v_stride, fill, m, l, o);
    case 2: return narrow_softmax_values_of_width<2>(p, keys, v, v_stride, fill, m, l, o);
    case 3: return narrow_softmax_values_of_width<3>(p, keys, v, v_stride, fill, m, l, o);
    case 4: return narrow_softmax_values_of_width<4>(p, keys, v, v_stride, fill, m, l, o);
    case 5: return narrow_softmax_values_of_width<5>(p, keys, v, v_stride, fill, m, l, o);
    default: return narrow_softmax_values_of_width<6>(p, keys, v, v_stride, fill, m, l, o);
  }
}

void dot_rows(const float* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d, float* out) {
  const std::size_t whole = d / kLanes * kLanes;
  auto tail = [&](const float* row) {  // the features past whole batches
    float sum = 0.0f;
    for (std::size_t t = whole; t < d; ++t) sum += q[t] * row[t];
    return sum;
  };
  std::size_t j = 0;
  // kLanes keys at a time: one accumulator each, then one horizontal add of
  // all of them (haddp) instead of one reduction per key.
  for (; j + kLanes <= keys; j += kLanes) {
    const float* row = k + j * k_stride;
    batch acc[kLanes];
    for (std::size_t r = 0; r < kLanes; ++r) acc[r] = batch(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch qt = batch::load_unaligned(q + t);
      for (std::size_t r = 0; r < kLanes; ++r) acc[r] = madd(qt, batch::load_unaligned(row + r * k_stride + t), acc[r]);
    }
    batch sums = xsimd::haddp(acc);
    if (whole < d) {
      alignas(16) float rest[kLanes];
      for (std::size_t r = 0; r < kLanes; ++r) rest[r] = tail(row + r * k_stride);
      sums += batch::load_aligned(rest);
    }
    sums.store_unaligned(out + j);
  }
  for (; j < keys; ++j) {
    const float* row = k + j * k_stride;
    batch acc(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) acc = madd(batch::load_unaligned(q + t), batch::load_unaligned(row + t), acc);
    out[j] = xsimd::reduce_add(acc) + tail(row);
  }
}

void weighted_rows(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d, float* z) {
  // Columns in chunks of up to kChunk batches, whose sums stay in registers
  // down all the keys.
  constexpr std::size_t kChunk = 8;
  std::size_t t0 = 0;
  for (; t0 + kLanes <= d; t0 += kChunk * kLanes) {
    const std::size_t n = std::min(kChunk, (d - t0) / kLanes);
    batch acc[kChunk];
    for (std::size_t c = 0; c < kChunk; ++c) acc[c] = batch(0.0f);
    for (std::size_t j = 0; j < keys; ++j) {
      const batch pj(p[j]);
      const float* row = v + j * v_stride + t0;
      for (std::size_t c = 0; c < n; ++c) acc[c] = madd(pj, batch::load_unaligned(row + c * kLanes), acc[c]);
    }
    for (std::size_t c = 0; c < n; ++c) acc[c].store_unaligned(z + t0 + c * kLanes);
    if (n < kChunk) {
      t0 += n * kLanes;
      break;
    }
  }
  for (std::size_t t = t0; t < d; ++t) {  // scalar tail
    float sum = 0.0f;
    for (std::size_t j = 0; j < keys; ++j) sum += p[j] * v[j * v_stride + t];
    z[t] = sum;
  }
}

void dot_rows4(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out) {
  static_assert(kLanes == 4, "one batch holds the four queries' scores of a key");
  const std::size_t whole = d / kLanes * kLanes;
  auto finish = [&](batch (&acc)[4], const float* row, float* dst) {  // the sums, plus the features past whole batches
    batch sums = xsimd::haddp(acc);
    if (whole < d) {
      alignas(16) float rest[4] = {};
      for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t t = whole; t < d; ++t) rest[c] += q[c][t] * row[t];
      sums += batch::load_aligned(rest);
    }
    sums.store_unaligned(dst);
  };
  std::size_t j = 0;
  // Two keys at a time: eight independent sums, each query's batch loaded
  // once for both.
  for (; j + 2 <= keys; j += 2) {
    const float* r0 = k + j * k_stride;
    const float* r1 = r0 + k_stride;
    batch a0[4], a1[4];
    for (std::size_t c = 0; c < 4; ++c) a0[c] = a1[c] = batch(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch k0 = batch::load_unaligned(r0 + t), k1 = batch::load_unaligned(r1 + t);
      for (std::size_t c = 0; c < 4; ++c) {
        const batch qc = batch::load_unaligned(q[c] + t);
        a0[c] = madd(qc, k0, a0[c]);
        a1[c] = madd(qc, k1, a1[c]);
      }
    }
    finish(a0, r0, out + j * 4);
    finish(a1, r1, out + (j + 1) * 4);
  }
  for (; j < keys; ++j) {
    const float* row = k + j * k_stride;
    batch acc[4];
    for (std::size_t c = 0; c < 4; ++c) acc[c] = batch(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch kt = batch::load_unaligned(row + t);
      for (std::size_t c = 0; c < 4; ++c) acc[c] = madd(batch::load_unaligned(q[c] + t), kt, acc[c]);
    }
    finish(acc, row, out + j * 4);
  }
}

void weighted_rows4(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z) {
  // Two batches of columns for all four queries per pass: 8 sums in
  // registers. The keys go in blocks whose value rows stay in L1 through
  // every pass over the columns, so each row comes from memory once; the
  // sums carry over from block to block through z.
  constexpr std::size_t kChunk = 2, kBlockKeys = 32;
  const std::size_t whole = d / (kChunk * kLanes) * (kChunk * kLanes);
  for (std::size_t c = 0; c < 4; ++c) std::fill(z[c], z[c] + d, 0.0f);
  for (std::size_t j0 = 0; j0 < keys; j0 += kBlockKeys) {
    const std::size_t j1 = std::min(keys, j0 + kBlockKeys);
    for (std::size_t t0 = 0; t0 < whole; t0 += kChunk * kLanes) {
      batch acc[4][kChunk];
      for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t u = 0; u < kChunk; ++u) acc[c][u] = batch::load_unaligned(z[c] + t0 + u * kLanes);
      for (std::size_t j = j0; j < j1; ++j) {
        const float* row = v + j * v_stride + t0;
        batch vt[kChunk];
        for (std::size_t u = 0; u < kChunk; ++u) vt[u] = batch::load_unaligned(row + u * kLanes);
        for (std::size_t c = 0; c < 4; ++c) {
          const batch pj(p[j * 4 + c]);
          for (std::size_t u = 0; u < kChunk; ++u) acc[c][u] = madd(pj, vt[u], acc[c][u]);
          keep_order();
        }
      }
      for (std::size_t c = 0; c < 4; ++c)
        for (std::size_t u = 0; u < kChunk; ++u) acc[c][u].store_unaligned(z[c] + t0 + u * kLanes);
    }
    for (std::size_t t = whole; t < d; ++t)  // the columns past whole chunks
      for (std::size_t c = 0; c < 4; ++c) {
        float sum = z[c][t];
        for (std::size_t j = j0; j < j1; ++j) sum += p[j * 4 + c] * v[j * v_stride + t];
        z[c][t] = sum;
      }
  }
}

void dot_rows2(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out) {
  const std::size_t whole = d / kLanes * kLanes;
  auto tail = [&](std::size_t c, const float* row) {  // the features past whole batches
    float sum = 0.0f;
    for (std::size_t t = whole; t < d; ++t) sum += q[c][t] * row[t];
    return sum;
  };
  std::size_t j = 0;
  // Two keys by two queries: four sums, one horizontal add for all of them.
  for (; j + 2 <= keys; j += 2) {
    const float* r0 = k + j * k_stride;
    const float* r1 = r0 + k_stride;
    batch acc[4];
    for (std::size_t c = 0; c < 4; ++c) acc[c] = batch(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch k0 = batch::load_unaligned(r0 + t), k1 = batch::load_unaligned(r1 + t);
      const batch q0 = batch::load_unaligned(q[0] + t), q1 = batch::load_unaligned(q[1] + t);
      acc[0] = madd(q0, k0, acc[0]);
      acc[1] = madd(q1, k0, acc[1]);
      acc[2] = madd(q0, k1, acc[2]);
      acc[3] = madd(q1, k1, acc[3]);
    }
    alignas(16) float s[4];
    xsimd::haddp(acc).store_aligned(s);  // (key j: q0, q1), (key j + 1: q0, q1)
    float* o = out + j * 4;
    o[0] = s[0] + tail(0, r0), o[1] = s[1] + tail(1, r0), o[2] = o[3] = 0.0f;
    o[4] = s[2] + tail(0, r1), o[5] = s[3] + tail(1, r1), o[6] = o[7] = 0.0f;
  }
  for (; j < keys; ++j) {
    const float* row = k + j * k_stride;
    batch a0(0.0f), a1(0.0f);
    for (std::size_t t = 0; t < whole; t += kLanes) {
      const batch kt = batch::load_unaligned(row + t);
      a0 = madd(batch::load_unaligned(q[0] + t), kt, a0);
      a1 = madd(batch::load_unaligned(q[1] + t), kt, a1);
    }
    float* o = out + j * 4;
    o[0] = xsimd::reduce_add(a0) + tail(0, row), o[1] = xsimd::reduce_add(a1) + tail(1, row), o[2] = o[3] = 0.0f;
  }
}

void weighted_rows2(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z) {
  // Four batches of columns for both queries per pass (8 sums), value rows
  // in blocks of 32 keys that stay in L1 across the passes, as weighted_rows4.
  constexpr std::size_t kChunk = 4, kBlockKeys = 32;
  const std::size_t whole = d / (kChunk * kLanes) * (kChunk * kLanes);
  for (std::size_t c = 0; c < 2; ++c) std::fill(z[c], z[c] + d, 0.0f);
  for (std::size_t j0 = 0; j0 < keys; j0 += kBlockKeys) {
    const std::size_t j1 = std::min(keys, j0 + kBlockKeys);
    for (std::size_t t0 = 0; t0 < whole; t0 += kChunk * kLanes) {
      batch acc[2][kChunk];
      for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t u = 0; u < kChunk; ++u) acc[c][u] = batch::load_unaligned(z[c] + t0 + u * kLanes);
      for (std::size_t j = j0; j < j1; ++j) {
        const float* row = v + j * v_stride + t0;
        const batch p0(p[j * 4]), p1(p[j * 4 + 1]);
        for (std::size_t u = 0; u < kChunk; ++u) {
          const batch vt = batch::load_unaligned(row + u * kLanes);
          acc[0][u] = madd(p0, vt, acc[0][u]);
          acc[1][u] = madd(p1, vt, acc[1][u]);
        }
        keep_order();
      }
      for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t u = 0; u < kChunk; ++u) acc[c][u].store_unaligned(z[c] + t0 + u * kLanes);
    }
    for (std::size_t t = whole; t < d; ++t)  // the columns past whole chunks
      for (std::size_t c = 0; c < 2; ++c) {
        float sum = z[c][t];
        for (std::size_t j = j0; j < j1; ++j) sum += p[j * 4 + c] * v[j * v_stride + t];
        z[c][t] = sum;
      }
  }
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
