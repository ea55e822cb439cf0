// Plain-loop versions of the primitives: the oracle the SIMD kernels are tested
// against. Written for obviousness, accumulating in double where it is free to.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.hpp"

namespace mha::scalar {
namespace {

double dot(const float* a, const float* b, std::size_t n) {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += double(a[i]) * double(b[i]);
  return sum;
}

// z[c] = sum_j p[j * 4 + c] * v_j for the first `queries` columns of p.
void weighted_columns(const float* p, std::size_t queries, const float* v, std::size_t v_stride, std::size_t keys,
                      std::size_t d, float* const* z) {
  for (std::size_t c = 0; c < queries; ++c)
    for (std::size_t t = 0; t < d; ++t) {
      double sum = 0.0;
      for (std::size_t j = 0; j < keys; ++j) sum += double(p[j * 4 + c]) * double(v[j * v_stride + t]);
      z[c][t] = float(sum);
    }
}

}  // namespace

void axpy(float alpha, const float* x, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void scale(float alpha, float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] *= alpha;
}

float exp_shifted_sum(float* x, std::size_t n, float shift) {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = std::exp2(x[i] - shift);
    sum += x[i];
  }
  return float(sum);
}

void softmax_columns(float* t, std::size_t ldt, std::size_t keys, std::size_t cols, float* m, float* l,
                     float* rescale) {
  for (std::size_t c = 0; c < cols; ++c) {
    float m_new = m[c];
    for (std::size_t r = 0; r < keys; ++r)
      if (m_new < t[r * ldt + c]) m_new = t[r * ldt + c];  // NaN is never taken
    const float shift = softmax_shift(m_new);
    double sum = 0.0;
    for (std::size_t r = 0; r < keys; ++r) sum += (t[r * ldt + c] = std::exp2(t[r * ldt + c] - shift));
    rescale[c] = std::exp2(m[c] - shift);
    l[c] = float(double(l[c]) * rescale[c] + sum);
    m[c] = m_new;
  }
}

void gemm(RowGroups a, std::size_t m, Panels b, std::size_t k, std::size_t n, const float* bias,
          bool accumulate, float* c, std::size_t ldc) {
  constexpr std::size_t P = PackedWeight::kPanel, R = kGemmRows;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double acc = accumulate ? c[i * ldc + j] : (bias ? bias[j] : 0.0f);
      for (std::size_t kk = 0; kk < k; ++kk)  // A(i, kk) and B(kk, j), per the RowGroups and Panels layouts
        acc += double(a.data[(i / R) * a.group_stride + kk * a.k_stride + i % R]) *
               double(b.data[(j / P) * b.panel_stride + kk * P + j % P]);
      c[i * ldc + j] = float(acc);
    }
}

void gemm(const float* a, std::size_t m, std::size_t lda, Panels b, std::size_t k, std::size_t n,
          const float* bias, bool accumulate, float* c, std::size_t ldc) {
  constexpr std::size_t P = PackedWeight::kPanel;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      double acc = accumulate ? c[i * ldc + j] : (bias ? bias[j] : 0.0f);
      for (std::size_t kk = 0; kk < k; ++kk)  // B(kk, j), per the Panels layout
        acc += double(a[i * lda + kk]) * double(b.data[(j / P) * b.panel_stride + kk * P + j % P]);
      c[i * ldc + j] = float(acc);
    }
}

void narrow_scores(const float* qt, std::size_t d, const float* k, std::size_t k_stride, std::size_t keys,
                   float* scores) {
  constexpr std::size_t Q = kNarrowQueries;
  for (std::size_t j = 0; j < keys; ++j)
    for (std::size_t c = 0; c < Q; ++c) {
      double sum = 0.0;
      for (std::size_t t = 0; t < d; ++t) sum += double(qt[t * Q + c]) * double(k[j * k_stride + t]);
      scores[j * Q + c] = float(sum);
    }
}

void narrow_softmax_values(float* p, std::size_t keys, const float* v, std::size_t v_stride, std::size_t d,
                           float fill, float* m, float* l, float* o) {
  constexpr std::size_t Q = kNarrowQueries;
  constexpr float neg_inf = -std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < Q; ++c) {
    float max = neg_inf;
    for (std::size_t j = 0; j < keys; ++j)
      if (max < p[j * Q + c]) max = p[j * Q + c];  // NaN is never taken
    const float shift = softmax_shift(max);
    double sum = 0.0;
    for (std::size_t j = 0; j < keys; ++j) sum += (p[j * Q + c] = std::exp2(p[j * Q + c] - shift));
    for (std::size_t t = 0; t < d; ++t) {
      double acc = 0.0;
      for (std::size_t j = 0; j < keys; ++j) acc += double(p[j * Q + c]) * double(v[j * v_stride + t]);
      o[t * Q + c] = sum == 0.0 ? fill : float(acc / sum);
    }
    m[c] = max;
    l[c] = float(sum);
  }
}

void linear(const float* x, std::size_t m, std::size_t x_stride, const float* w, std::size_t n,
            std::size_t k, const float* bias, float* y, std::size_t y_stride) {
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)  // y[i, j] = x[i, :] . W[j, :] + bias[j]
      y[i * y_stride + j] = float(dot(x + i * x_stride, w + j * k, k) + (bias ? bias[j] : 0.0));
}

void dot_rows(const float* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d, float* out) {
  for (std::size_t j = 0; j < keys; ++j) out[j] = float(dot(q, k + j * k_stride, d));
}

void weighted_rows(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d, float* z) {
  for (std::size_t t = 0; t < d; ++t) {
    double sum = 0.0;
    for (std::size_t j = 0; j < keys; ++j) sum += double(p[j]) * double(v[j * v_stride + t]);
    z[t] = float(sum);
  }
}

void dot_rows4(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out) {
  for (std::size_t j = 0; j < keys; ++j)
    for (std::size_t c = 0; c < 4; ++c) out[j * 4 + c] = float(dot(q[c], k + j * k_stride, d));
}

void weighted_rows4(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z) {
  weighted_columns(p, 4, v, v_stride, keys, d, z);
}

void dot_rows2(const float* const* q, const float* k, std::size_t k_stride, std::size_t keys, std::size_t d,
               float* out) {
  for (std::size_t j = 0; j < keys; ++j)
    for (std::size_t c = 0; c < 4; ++c) out[j * 4 + c] = c < 2 ? float(dot(q[c], k + j * k_stride, d)) : 0.0f;
}

void weighted_rows2(const float* p, const float* v, std::size_t v_stride, std::size_t keys, std::size_t d,
                    float* const* z) {
  weighted_columns(p, 2, v, v_stride, keys, d, z);
}

void rms_norm(float* x, std::size_t d, const float* w, float eps) {
  double sum = 0.0;
  for (std::size_t t = 0; t < d; ++t) sum += double(x[t]) * double(x[t]);
  const float inv = float(1.0 / std::sqrt(sum / double(d) + double(eps)));
  for (std::size_t t = 0; t < d; ++t) x[t] = x[t] * inv * w[t];
}

void rotate_half(float* x, std::size_t r, const float* c, const float* s) {
  const std::size_t half = r / 2;
  for (std::size_t t = 0; t < half; ++t) {
    const float a = x[t], b = x[t + half];
    x[t] = a * c[t] - b * s[t];
    x[t + half] = b * c[t] + a * s[t];
  }
}

}  // namespace mha::scalar
