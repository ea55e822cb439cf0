// The batch type the SIMD kernels are written on, and what every one of
// them shares: the lanes, the multiply-add, the ordering barrier and the
// base-2 exponential. Internal to the kernels' .cpp files (kernels_simd.cpp,
// gemm.cpp, attention_kernels.cpp); nothing outside sees a batch.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

#include "kernels.hpp"

namespace mha::simd_lanes {

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

// A GEMM kernel's ROWS x kPanel accumulators from init (rows init_stride
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

// Makes `b` computed here, before the next keep_order(): LLVM otherwise
// sinks a computation to its first use, and a weight batch converted between
// two rows' multiply-adds holds its source and the next row's broadcast live
// at once (the reduced formats' micro-kernel then spilled an accumulator).
#if defined(__wasm__)
inline void keep_value(batch& b) { asm volatile("" : "+r"(b.data)); }
#else
inline void keep_value(batch&) {}
#endif

// exp2_batch's constants, as values its caller's loop holds. Written as
// constants, each is rebuilt by V8 from immediates wherever it is used,
// inside the loop: a 64-bit move to a general register, one to an xmm
// register and a shuffle, 27 instructions per batch of exponentials for its
// nine (seen in --print-wasm-code). Read through volatiles, they are values
// LLVM cannot fold back into constants, and V8 keeps them in registers or
// takes them as memory operands. Natively, plain constants.
struct Exp2Constants {
  batch lowest, magic, c[7];  // c: the polynomial's coefficients, highest degree first
};
#if defined(__wasm__)
inline volatile float exp2_constant_values[9] = {
#else
inline constexpr float exp2_constant_values[9] = {
#endif
    // -126: below 2^-126 (FLT_MIN) the result is 0. 1.5 * 2^23 + 127: adding
    // it rounds x to an integer n and leaves n + 127, the biased exponent of
    // 2^n, in the low bits.
    -126.0f, 12583039.0f,
    // 2^f on |f| <= 1/2 (scripts/fit_exp2.cpp prints these).
    1.546144485e-4f, 1.340042800e-3f, 9.618056938e-3f, 5.550327152e-2f, 2.402265072e-1f, 6.931471825e-1f, 1.0f};
inline Exp2Constants exp2_constants() {
  Exp2Constants k;
  k.lowest = batch(exp2_constant_values[0]);
  k.magic = batch(exp2_constant_values[1]);
  for (std::size_t i = 0; i < 7; ++i) k.c[i] = batch(exp2_constant_values[2 + i]);
  return k;
}

// 2^x for a batch with x <= 0 (a score minus its column's max; scores are in
// base-2 units, see kLog2e), to under 2 ulp: x = n + f with n an integer and
// |f| <= 1/2, 2^f by a degree-6 polynomial (a relative-error minimax fit with
// p(0) = 1, so the max itself weighs exactly 1), 2^n put straight into the
// exponent bits. Base 2 because e^x needs x / ln 2 first and then an
// x - n ln 2 in two parts: 19 operations here against Cephes' expf's 25, in
// the loop the softmax spends its time in. xsimd::exp is exact too but, in
// its WebAssembly build, took ~80 cycles a batch. Below 2^-126 the result is
// 0 exactly (so a masked score's weight is exactly 0, as in PyTorch); NaN
// stays NaN. x <= 0 is why there is no clamp at the top: a clamp cost a
// NaN-safe min, 7 x86 instructions in V8, and one more constant to hold
// along with the loop's own values.
inline batch exp2_batch(batch x, const Exp2Constants& k) {
  const batch t = x + k.magic;
  const batch f = x - (t - k.magic);  // |f| <= 1/2
  batch p = k.c[0];
  for (std::size_t i = 1; i < 7; ++i) p = madd(p, f, k.c[i]);
  // 2^n: shifting t's bits left by 23 drops everything above n + 127 and
  // puts n + 127 in the exponent field.
  const batch scale = xsimd::bitwise_cast<float>(xsimd::bitwise_cast<std::int32_t>(t) << 23);
  // Below FLT_MIN (and -inf, a masked score, whose f is NaN): 0 exactly, by
  // clearing the bits. A NaN x compares false and stays NaN.
  return xsimd::bitwise_andnot(p * scale, batch((x < k.lowest).data));
}

// softmax_shift per lane.
inline batch softmax_shift(batch max) {
  return xsimd::select(max == batch(-std::numeric_limits<float>::infinity()), batch(0.0f), max);
}

}  // namespace mha::simd_lanes
