// How a k row of a reduced-format weight panel becomes float batches in
// registers (the GEMM's kernels, gemm.cpp): the panel types, the
// conversions, and the constants they keep in registers. Internal to
// gemm.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "simd_batch.hpp"
#include "weight_formats.hpp"

namespace mha::panel_values {
using namespace simd_lanes;

// One k row of a reduced panel (kPanel values) as kPanelBatches float
// batches: the values weight_formats.cpp's conversions give, dequantized in
// registers. The 16-bit formats' rows are in half_slot's order: one load,
// and each 32-bit lane's halves are columns j and j + 4. f16 through its
// bits: a half moved to a lane's top and shifted right by 3 with its sign,
// the sign lands in bit 31 and exponent and mantissa in a float's; clearing
// bits 28-30 (copies of the sign) and 0-12 leaves the value times 2^-112,
// which one exact multiply fixes, subnormals included (f16 weights are
// finite: see first_unstorable). bf16 is a float's top half. int8: q times
// its block's column scales.
template <WeightFormat F>
struct ReducedPanel;
template <>
struct ReducedPanel<WeightFormat::f32> {  // float32 panels, for row_kernel (never blocked)
  const float* w;
  const float* scales;  // unused
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
// A half in the top 16 bits of a lane, shifted right by 3 with its sign:
// sign in bit 31 and exponent and mantissa in a float's, times 2^-112, once
// bits 28-30 (copies of the sign) and 0-12 (the lane's other half) are
// cleared.
inline volatile std::int32_t f16_keep_bits = std::int32_t(0x8fffe000u);
inline volatile float f16_rescale = 0x1p112f;
inline F16Constants f16_constants() { return {wasm_i32x4_splat(f16_keep_bits), wasm_f32x4_splat(f16_rescale)}; }

// A panel's k row of halves (half_slot's order) as columns 0-3 and 4-7:
// f16 values times 2^-112 (exactly; subnormal floats for subnormal halves).
// Alone, for kernels whose activations were packed times 2^112 (gemm.cpp).
inline void load_f16_scaled_down(const std::uint16_t* w, const F16Constants& k, batch* out) {
  const v128_t v = wasm_v128_load(w);
  out[0] = batch(wasm_v128_and(wasm_i32x4_shr(wasm_i32x4_shl(v, 16), 3), k.keep));
  out[1] = batch(wasm_v128_and(wasm_i32x4_shr(v, 3), k.keep));
}
inline void load_values(const std::uint16_t* w, const float*, const F16Constants& k, batch* out,
                        ReducedPanel<WeightFormat::f16>*) {
  static_assert(kPanelBatches == 2, "a k row of halves is one v128 of two batches");
  load_f16_scaled_down(w, k, out);
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch(wasm_f32x4_mul(out[j], k.rescale));
}
// bf16's one constant, the mask of a lane's high half, held the same way.
struct Bf16Constants {
  v128_t high;
};
inline volatile std::int32_t bf16_high_bits = std::int32_t(0xffff0000u);
inline Bf16Constants bf16_constants() { return {wasm_i32x4_splat(bf16_high_bits)}; }
inline void load_values(const std::uint16_t* w, const float*, const Bf16Constants& k, batch* out,
                        ReducedPanel<WeightFormat::bf16>*) {
  const v128_t v = wasm_v128_load(w);
  out[0] = batch(wasm_i32x4_shl(v, 16));
  out[1] = batch(wasm_v128_and(v, k.high));
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
    if constexpr (F == WeightFormat::f16) v[c] = f16_value(w[PackedWeight::half_slot(c)]);
    else if constexpr (F == WeightFormat::bf16) v[c] = bf16_value(w[PackedWeight::half_slot(c)]);
    else v[c] = float(w[c]) * s[c];
  }
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch::load_aligned(v + j * kLanes);
}
inline void load_f16_scaled_down(const std::uint16_t* w, NoConstants, batch* out) {
  alignas(16) float v[kPanel];
  for (std::size_t c = 0; c < kPanel; ++c) v[c] = f16_value(w[PackedWeight::half_slot(c)]) * 0x1p-112f;
  for (std::size_t j = 0; j < kPanelBatches; ++j) out[j] = batch::load_aligned(v + j * kLanes);
}
#endif

// What a format's conversion keeps in registers through the loop.
template <WeightFormat F>
inline auto loop_constants() {
#if defined(__wasm_simd128__)
  if constexpr (F == WeightFormat::f16) return f16_constants();
  else if constexpr (F == WeightFormat::bf16) return bf16_constants();
  else return NoConstants{};
#else
  return NoConstants{};
#endif
}

#if defined(__wasm_relaxed_simd__)
// Two k rows of an int8 panel (16 codes, one 16-byte load) as floats times
// 2^24, exactly: relaxed_swizzle puts each code in the top byte of a 32-bit
// lane and zeros the rest (indices of 128 and more give 0 on every engine),
// and the conversion to float is then code * 2^24. One swizzle and one
// conversion per four codes, where the widening takes three operations per
// eight codes more. The four swizzle patterns are read from memory through
// a pointer the compiler cannot see through: as constants, V8 rebuilds each
// from immediates where it is used.
struct Int8Swizzles {
  v128_t rows[4];  // row k columns 0-3, 4-7; row k + 1 columns 0-3, 4-7
};
inline Int8Swizzles int8_swizzles() {
  alignas(16) static const std::int8_t kPatterns[4][16] = {
      {-128, -128, -128, 0, -128, -128, -128, 1, -128, -128, -128, 2, -128, -128, -128, 3},
      {-128, -128, -128, 4, -128, -128, -128, 5, -128, -128, -128, 6, -128, -128, -128, 7},
      {-128, -128, -128, 8, -128, -128, -128, 9, -128, -128, -128, 10, -128, -128, -128, 11},
      {-128, -128, -128, 12, -128, -128, -128, 13, -128, -128, -128, 14, -128, -128, -128, 15}};
  const std::int8_t(*patterns)[16] = kPatterns;
  asm volatile("" : "+r"(patterns));
  Int8Swizzles s;
  for (std::size_t i = 0; i < 4; ++i) s.rows[i] = wasm_v128_load(patterns[i]);
  return s;
}
inline batch int8_codes_times_2p24(v128_t two_rows, const Int8Swizzles& s, std::size_t i) {
  return batch(wasm_f32x4_convert_i32x4(wasm_i8x16_relaxed_swizzle(two_rows, s.rows[i])));
}
#endif

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

}  // namespace mha::panel_values
