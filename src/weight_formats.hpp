// How a packed weight may store its values, and the scalar conversions
// between them and float32: IEEE half (f16) and bfloat16 by round to nearest
// even, and int8, symmetric, per output row in blocks of kQuantBlock along
// the input: scale = max|w| / 127 over the block (in float32), q = w / scale
// rounded half away from zero, the value float(q) * scale (a block of zeros
// has scale 0). Run once, when a weight is set; the GEMM dequantizes in its
// registers (gemm.cpp) to the same values these give.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mha {

enum class WeightFormat : std::uint8_t { f32, f16, bf16, int8 };

inline constexpr std::size_t kQuantBlock = 32;

std::uint16_t f16_bits(float x);       // overflow gives infinity, as a float16 cast does
float f16_value(std::uint16_t bits);
std::uint16_t bf16_bits(float x);      // NaN stays NaN
float bf16_value(std::uint16_t bits);

// The scale of a block of int8 weights, and one weight's code under it.
float int8_scale(const float* w, std::size_t n);
std::int8_t int8_code(float w, float scale);

// The index of the first of w[0, n) the format cannot hold: a value f16
// rounds to infinity or NaN (the kernel's conversion reads finite values
// only), or a non-finite value int8 cannot scale; n when there is none.
std::size_t first_unstorable(const float* w, std::size_t n, WeightFormat format);

// Bytes one value takes (int8's scales not counted).
std::size_t value_bytes(WeightFormat format);

}  // namespace mha
