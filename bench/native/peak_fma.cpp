// The native f32x4 peak with and without fused multiply-add: 12 independent
// 4-wide chains, x = x * m + a, as two instructions (mul, add) or one (FMA),
// in registers, the same 8 FLOP a step either way. Built only in the avx-fma
// variant (bench/native/CMakeLists.txt); bench/native.js runs it beside the
// core. Why: whether FMA would raise the peak the 70 % target is measured
// against, or only cut the kernel's instructions, depends on the CPU's pipes
// (on AMD's Zen, two FMA pipes against two multiply and two add pipes).
//
//   build/native-bench-avx-fma/bench/native/peak_fma   -> {"mulAdd": GFLOP/s, "fma": GFLOP/s}
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {

constexpr long kSteps = 5000000;
constexpr int kRounds = 11;

// Twelve named values, not an array: an array kept in memory turned every
// step into a store and a reload (12 GFLOP/s instead of 45).
template <bool kFma>
__attribute__((noinline)) __m128 chains(long steps, __m128 m, __m128 a) {
  __m128 x0 = _mm_set1_ps(1.0f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0, x8 = x0, x9 = x0,
         x10 = x0, x11 = x0;
  for (long i = 0; i < steps; ++i) {
#define MHA_STEP(x) x = kFma ? _mm_fmadd_ps(x, m, a) : _mm_add_ps(_mm_mul_ps(x, m), a);
    MHA_STEP(x0) MHA_STEP(x1) MHA_STEP(x2) MHA_STEP(x3) MHA_STEP(x4) MHA_STEP(x5)
    MHA_STEP(x6) MHA_STEP(x7) MHA_STEP(x8) MHA_STEP(x9) MHA_STEP(x10) MHA_STEP(x11)
#undef MHA_STEP
    // Keeps the compiler from merging or reordering steps across iterations.
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5), "+x"(x6), "+x"(x7), "+x"(x8),
                 "+x"(x9), "+x"(x10), "+x"(x11));
  }
  return _mm_add_ps(_mm_add_ps(_mm_add_ps(_mm_add_ps(x0, x1), _mm_add_ps(x2, x3)), _mm_add_ps(_mm_add_ps(x4, x5), _mm_add_ps(x6, x7))),
                    _mm_add_ps(_mm_add_ps(x8, x9), _mm_add_ps(x10, x11)));
}

template <bool kFma>
double gflops() {
  const auto t0 = std::chrono::steady_clock::now();
  const __m128 r = chains<kFma>(kSteps, _mm_set1_ps(0.999999f), _mm_set1_ps(1e-7f));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  volatile float sink = _mm_cvtss_f32(r);
  (void)sink;
  return double(kSteps) * 12 * 8 / s / 1e9;
}

}  // namespace

int main() {
  std::vector<double> mul_add, fma;
  for (int r = 0; r < kRounds; ++r) {  // taking turns: the machine's drift hits both
    mul_add.push_back(gflops<false>());
    fma.push_back(gflops<true>());
  }
  const auto best = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf("{\"mulAdd\": %.2f, \"fma\": %.2f}\n", best(mul_add), best(fma));
}
