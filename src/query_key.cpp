#include "query_key.hpp"

#include <algorithm>
#include <cmath>

#include "kernels.hpp"

namespace mha {

std::vector<double> rope_inverse_frequencies(const Rope& rope) {
  const std::size_t half = std::size_t(rope.dim / 2);
  std::vector<double> inv(half);
  for (std::size_t t = 0; t < half; ++t) inv[t] = 1.0 / std::pow(rope.base, double(2 * t) / double(rope.dim));
  if (rope.scaling == Rope::Scaling::linear) {
    for (double& f : inv) f /= rope.factor;
  } else if (rope.scaling == Rope::Scaling::llama3) {
    // Wavelengths longer than the original context / low_freq_factor are
    // divided by factor, shorter than / high_freq_factor kept, and the band
    // between blended by where the wavelength falls.
    const double pi = 3.14159265358979323846;
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
  }
  return inv;
}

void rope_angles(const double* inv_freq, std::size_t half, std::int64_t position, float* cos, float* sin) {
  for (std::size_t t = 0; t < half; ++t) {
    const double a = double(position) * inv_freq[t];
    cos[t] = float(std::cos(a));
    sin[t] = float(std::sin(a));
  }
}

void transform_head(const QueryKeyTransform& t, float* x, const float* norm, const float* cos, const float* sin) {
  if (norm != nullptr) simd::rms_norm(x, t.d, norm, t.eps);
  if (t.rope_dim == 0) return;
  if (t.layout == Rope::Layout::half) simd::rotate_half(x, t.rope_dim, cos, sin);
  else simd::rotate_interleaved(x, t.rope_dim, cos, sin);
}

}  // namespace mha
