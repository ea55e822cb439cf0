#include "query_key.hpp"

#include <algorithm>
#include <cmath>

#include "kernels.hpp"

namespace mha {

std::vector<double> rope_inverse_frequencies(const Rope& rope, bool long_context) {
  const std::size_t half = std::size_t(rope.dim / 2);
  const double r = double(rope.dim);
  std::vector<double> inv(half);
  for (std::size_t t = 0; t < half; ++t) inv[t] = 1.0 / std::pow(rope.base, double(2 * t) / r);
  const double pi = 3.14159265358979323846;
  switch (rope.scaling) {
    case Rope::Scaling::none: break;
    case Rope::Scaling::linear:
      for (double& f : inv) f /= rope.factor;
      break;
    case Rope::Scaling::llama3: {
      // Wavelengths longer than the original context / low_freq_factor are
      // divided by factor, shorter than / high_freq_factor kept, and the band
      // between blended by where the wavelength falls.
      const double low_wavelen = rope.original_max_positions / rope.low_freq_factor;
      const double high_wavelen = rope.original_max_positions / rope.high_freq_factor;
      for (double& f : inv) {
        const double wavelen = 2 * pi / f;
        if (wavelen > low_wavelen) {
          f /= rope.factor;
        } else if (!(wavelen < high_wavelen)) {
          const double smooth = (rope.original_max_positions / wavelen - rope.low_freq_factor) /
                                (rope.high_freq_factor - rope.low_freq_factor);
          f = (1 - smooth) * f / rope.factor + smooth * f;
        }
      }
      break;
    }
    case Rope::Scaling::yarn: {
      // Pairs that turn more than beta_fast times over the original context
      // keep their frequency (extrapolation), those turning fewer than
      // beta_slow times are divided by factor (interpolation), and a linear
      // ramp over the pair index blends the ones between.
      auto pair_turning = [&](double turns) {
        return r * std::log(rope.original_max_positions / (turns * 2 * pi)) / (2 * std::log(rope.base));
      };
      double low = pair_turning(rope.beta_fast), high = pair_turning(rope.beta_slow);
      if (rope.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, r - 1);
      if (low == high) high += 0.001;  // (Hugging Face's guard against a zero-width ramp)
      for (std::size_t t = 0; t < half; ++t) {
        const double ramp = std::clamp((double(t) - low) / (high - low), 0.0, 1.0);
        const double kept = 1 - ramp;  // the extrapolated share
        inv[t] = inv[t] / rope.factor * (1 - kept) + inv[t] * kept;
      }
      break;
    }
    case Rope::Scaling::longrope: {
      const std::vector<double>& ext = long_context ? rope.long_factor : rope.short_factor;
      for (std::size_t t = 0; t < half; ++t) inv[t] = 1.0 / (ext[t] * std::pow(rope.base, double(2 * t) / r));
      break;
    }
  }
  return inv;
}

bool rope_long_context(const Rope& rope, std::int64_t largest_position) {
  return rope.scaling == Rope::Scaling::longrope && double(largest_position) + 1 > rope.original_max_positions;
}

void rope_angles(const double* inv_freq, std::size_t half, double attention_factor, std::int64_t position,
                 float* cos, float* sin) {
  for (std::size_t t = 0; t < half; ++t) {
    const double a = double(position) * inv_freq[t];
    cos[t] = float(std::cos(a) * attention_factor);
    sin[t] = float(std::sin(a) * attention_factor);
  }
}

void transform_head(const QueryKeyTransform& t, float* x, const float* norm, const float* cos, const float* sin) {
  if (norm != nullptr) simd::rms_norm(x, t.d, norm, t.eps);
  if (t.rope_dim == 0) return;
  if (t.layout == Rope::Layout::half) simd::rotate_half(x, t.rope_dim, cos, sin);
  else simd::rotate_interleaved(x, t.rope_dim, cos, sin);
}

}  // namespace mha
