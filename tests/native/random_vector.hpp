// Deterministic test data shared by the native suites, from the project's
// one seeded generator in C++ (src/random.hpp, which initialises weights).
#pragma once

#include <vector>

#include "random.hpp"

inline std::vector<float> random_vector(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  mha::Random rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.uniform(lo, hi));
  return v;
}
