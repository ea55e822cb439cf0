// A small deterministic generator for parameter initialisation: the same seed
// gives the same weights on every platform (no std::*_distribution, whose
// output is implementation-defined).
#pragma once

#include <cmath>
#include <cstdint>

namespace mha {

class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}

  // splitmix64 (Steele, Lea, Flood 2014): full period, good enough for weights.
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double unit() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }

  // Standard normal by Box-Muller; 1 - unit() keeps the logarithm finite.
  double normal() {
    const double u1 = 1.0 - unit(), u2 = unit();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  std::uint64_t state_;
};

}  // namespace mha
