#include "weight_formats.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels.hpp"

namespace mha {
namespace {

std::uint32_t bits_of(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

float float_of(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace

std::uint16_t f16_bits(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return std::uint16_t(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));  // NaN, inf
  if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // rounds past 65504: inf
  if (a < 0x38800000u) {
    // Below 2^-14: a subnormal half, the value in units of 2^-24, rounded to
    // nearest even by the float addition (exact below 2^-14 + 0.5 ulp).
    const float scaled = float_of(a) * 16777216.0f;  // * 2^24, exact
    return std::uint16_t(sign | std::uint16_t(std::nearbyint(scaled)));
  }
  // Normal: rebias the exponent (127 -> 15), round the 13 dropped mantissa
  // bits to nearest even; a carry into the exponent is the right result.
  const std::uint32_t rounded = a + 0x0fffu + ((a >> 13) & 1u);
  return std::uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

float f16_value(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {  // subnormal (or zero): m * 2^-24
    const float v = float(m) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return float_of(sign | 0x7f800000u | (m << 13));
  return float_of(sign | ((e + 112u) << 23) | (m << 13));
}

std::uint16_t bf16_bits(float x) {
  const std::uint32_t u = bits_of(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x40u);  // NaN stays a (quiet) NaN
  return std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float bf16_value(std::uint16_t b) { return float_of(std::uint32_t(b) << 16); }

float int8_scale(const float* w, std::size_t n) {
  float max = 0.0f;
  for (std::size_t i = 0; i < n; ++i) max = std::fmax(max, std::fabs(w[i]));
  return max / 127.0f;
}

std::int8_t int8_code(float w, float scale) {
  if (scale == 0.0f) return 0;
  const double r = double(w / scale);  // the quotient in float32, as the reference divides
  const double q = std::floor(std::fabs(r) + 0.5);
  return std::int8_t((r < 0 ? -1.0 : 1.0) * std::fmin(q, 127.0));
}

std::size_t first_unstorable(const float* w, std::size_t n, WeightFormat format) {
  for (std::size_t i = 0; i < n; ++i) {
    if (format == WeightFormat::f16 && !std::isfinite(f16_value(f16_bits(w[i])))) return i;
    if (format == WeightFormat::int8 && !std::isfinite(w[i])) return i;
  }
  return n;
}

std::size_t value_bytes(WeightFormat format) {
  switch (format) {
    case WeightFormat::f32: return 4;
    case WeightFormat::f16:
    case WeightFormat::bf16: return 2;
    case WeightFormat::int8: return 1;
  }
  return 4;
}

PackedWeight pack_reduced(const float* w, std::size_t n, std::size_t k, WeightFormat format) {
  if (format == WeightFormat::f32) return pack_weight(w, n, k);
  constexpr std::size_t P = PackedWeight::kPanel;
  const std::size_t panels = (n + P - 1) / P, blocks = (k + kQuantBlock - 1) / kQuantBlock;
  PackedWeight packed;
  packed.format = format;
  packed.n = n;
  packed.k = k;
  if (format == WeightFormat::int8) {
    packed.q8.assign(panels * k * P, 0);
    packed.scales.assign(panels * blocks * P, 0.0f);
  } else {
    packed.half.assign(panels * k * P, 0);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = w + i * k;
    const std::size_t p = i / P, c = i % P, at = p * k * P + (format == WeightFormat::int8 ? c : PackedWeight::half_slot(c));
    if (format == WeightFormat::int8) {
      for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t k0 = b * kQuantBlock, len = std::min(kQuantBlock, k - k0);
        const float scale = int8_scale(row + k0, len);
        packed.scales[(p * blocks + b) * P + c] = scale;
        for (std::size_t kk = k0; kk < k0 + len; ++kk) packed.q8[at + kk * P] = int8_code(row[kk], scale);
      }
    } else {
      for (std::size_t kk = 0; kk < k; ++kk)
        packed.half[at + kk * P] = format == WeightFormat::f16 ? f16_bits(row[kk]) : bf16_bits(row[kk]);
    }
  }
  return packed;
}

void unpack_weight(const PackedWeight& w, float* out) {
  constexpr std::size_t P = PackedWeight::kPanel;
  const std::size_t blocks = (w.k + kQuantBlock - 1) / kQuantBlock;
  for (std::size_t i = 0; i < w.n; ++i) {
    const std::size_t p = i / P, c = i % P;
    const bool halves = w.format == WeightFormat::f16 || w.format == WeightFormat::bf16;
    const std::size_t at = p * w.k * P + (halves ? PackedWeight::half_slot(c) : c);
    float* row = out + i * w.k;
    for (std::size_t kk = 0; kk < w.k; ++kk) {
      const std::size_t j = at + kk * P;
      switch (w.format) {
        case WeightFormat::f32: row[kk] = w.data[j]; break;
        case WeightFormat::f16: row[kk] = f16_value(w.half[j]); break;
        case WeightFormat::bf16: row[kk] = bf16_value(w.half[j]); break;
        case WeightFormat::int8:
          row[kk] = float(w.q8[j]) * w.scales[(p * blocks + kk / kQuantBlock) * P + c];
          break;
      }
    }
  }
}

double packed_bytes(double n, double k, WeightFormat format) {
  constexpr double P = double(PackedWeight::kPanel), block = double(kQuantBlock);
  const double columns = std::ceil(n / P) * P;
  const double scales = format == WeightFormat::int8 ? columns * std::ceil(k / block) * sizeof(float) : 0.0;
  return columns * k * double(value_bytes(format)) + scales;
}

}  // namespace mha
