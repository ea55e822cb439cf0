// The polynomial behind exp2_batch (src/kernels_simd.cpp): p(f) = 1 + c1 f +
// ... + c6 f^6 ~ 2^f on [-1/2, 1/2], fitted by Remez exchange on the relative
// error in long double (p(0) = 1 is kept exact, so a score equal to its max
// weighs exactly 1), then checked as float32 Horner, mul + add as WebAssembly
// SIMD computes it, against exp2 in double. Not part of the build:
//
//   g++ -O2 -ffp-contract=off scripts/fit_exp2.cpp -o fit_exp2 && ./fit_exp2
#include <cmath>
#include <cstdio>

namespace {

constexpr int kDegree = 6;
constexpr int kPoints = kDegree + 1;  // unknowns: c1..c6 and the levelled error E
using Real = long double;

Real poly(const Real* c, Real x) {  // 1 + x (c1 + x (c2 + ...))
  Real p = c[kDegree];
  for (int k = kDegree - 1; k >= 1; --k) p = p * x + c[k];
  return 1 + p * x;
}
Real relative_error(const Real* c, Real x) { return poly(c, x) / exp2l(x) - 1; }

// Solves the augmented system a in place (Gauss-Jordan, partial pivoting):
// the solution ends up in a[i][kPoints].
void solve(Real a[kPoints][kPoints + 1]) {
  for (int i = 0; i < kPoints; ++i) {
    int p = i;
    for (int r = i + 1; r < kPoints; ++r)
      if (fabsl(a[r][i]) > fabsl(a[p][i])) p = r;
    for (int c = 0; c <= kPoints; ++c) {
      const Real t = a[i][c];
      a[i][c] = a[p][c];
      a[p][c] = t;
    }
    for (int r = 0; r < kPoints; ++r) {
      if (r == i) continue;
      const Real f = a[r][i] / a[i][i];
      for (int c = 0; c <= kPoints; ++c) a[r][c] -= f * a[i][c];
    }
  }
  for (int i = 0; i < kPoints; ++i) a[i][kPoints] /= a[i][i];
}

}  // namespace

int main() {
  Real x[kPoints], c[kDegree + 1] = {1};
  for (int i = 0; i < kPoints; ++i) x[i] = -0.5L * cosl(M_PIl * (i + 0.5L) / kPoints);
  for (int iteration = 0; iteration < 40; ++iteration) {
    // At each reference point: sum_k c_k x^k / 2^x + (-1)^i E = 1 - 1 / 2^x.
    Real a[kPoints][kPoints + 1];
    for (int i = 0; i < kPoints; ++i) {
      const Real y = exp2l(x[i]);
      Real xk = x[i];
      for (int k = 1; k <= kDegree; ++k, xk *= x[i]) a[i][k - 1] = xk / y;
      a[i][kDegree] = (i % 2) ? -1 : 1;
      a[i][kPoints] = 1 - 1 / y;
    }
    solve(a);
    for (int k = 1; k <= kDegree; ++k) c[k] = a[k - 1][kPoints];
    // Exchange: the largest |error| of each run of one sign becomes a
    // reference point, when there are as many runs as points.
    constexpr int kGrid = 40000, kMaxRuns = kPoints + 8;
    Real extrema[kMaxRuns];
    int runs = 0, sign = 0;
    Real best_x = 0, best = 0;
    for (int g = 0; g <= kGrid; ++g) {
      const Real xg = -0.5L + Real(g) / kGrid;
      if (fabsl(xg) < 1e-9L) continue;  // the error's forced zero, p(0) = 1
      const Real e = relative_error(c, xg);
      const int s = e > 0 ? 1 : -1;
      if (s != sign) {
        if (sign != 0 && runs < kMaxRuns) extrema[runs++] = best_x;
        sign = s, best_x = xg, best = e;
      } else if (fabsl(e) > fabsl(best)) {
        best_x = xg, best = e;
      }
    }
    if (runs < kMaxRuns) extrema[runs++] = best_x;
    if (runs == kPoints)
      for (int i = 0; i < kPoints; ++i) x[i] = extrema[i];
  }

  Real worst = 0;
  for (int g = 0; g <= 200000; ++g) worst = fmaxl(worst, fabsl(relative_error(c, -0.5L + Real(g) / 200000)));
  printf("long double: max relative error %.3Lg\n", worst);
  float cf[kDegree + 1];
  for (int k = 0; k <= kDegree; ++k) printf("c%d = %.9e\n", k, double(cf[k] = float(c[k])));
  double worst32 = 0;
  for (int g = 0; g <= 2000000; ++g) {
    const float f = -0.5f + float(g) / 2000000;
    float p = cf[kDegree];
    for (int k = kDegree - 1; k >= 0; --k) p = p * f + cf[k];
    worst32 = fmax(worst32, fabs(double(p) / exp2(double(f)) - 1));
  }
  printf("float32 Horner: max relative error %.3g (%.2f x 2^-24)\n", worst32, worst32 / ldexp(1.0, -24));
}
