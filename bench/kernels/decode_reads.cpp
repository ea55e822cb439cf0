// Decoding's kernels alone, in WebAssembly: the in-place attention's scores
// and weighted sums over a head-major cache, and the single-row f16
// projection, each read from DRAM (a new part of a buffer many times the
// last-level cache each time) and from cache (the same part again), beside a
// plain stream of the same bytes. bench/limits.md ("Decoding's reads",
// "16-bit weights' row order") quotes its figures. Built and run by
// bench/kernels/run.sh; not part of `npm test` or `npm run bench`.
#include <emscripten.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels.hpp"
#include "simd_batch.hpp"
#include "weight_formats.hpp"

namespace {

using namespace mha;
using namespace mha::simd_lanes;

constexpr std::size_t kKeys = 4096, kHeads = 8, kParts = 64;  // 64 parts of 8 heads: DRAM

__attribute__((noinline)) void stream(const float* p, std::size_t n, float* sink) {
  batch a0(0.0f), a1(0.0f), a2(0.0f), a3(0.0f);
  for (std::size_t i = 0; i + 16 <= n; i += 16) {
    a0 += batch::load_unaligned(p + i);
    a1 += batch::load_unaligned(p + i + 4);
    a2 += batch::load_unaligned(p + i + 8);
    a3 += batch::load_unaligned(p + i + 12);
  }
  ((a0 + a1) + (a2 + a3)).store_unaligned(sink);
}

// Best of `rounds` of fn(part) over kHeads heads, from DRAM (a new part each
// time) or from cache (part 0 each time).
template <typename Fn>
double best_ms(bool dram, int rounds, Fn fn) {
  double best = 1e30;
  for (int r = 0; r < rounds; ++r) {
    const double t0 = emscripten_get_now();
    for (std::size_t h = 0; h < kHeads; ++h) fn(dram ? (std::size_t(r) * kHeads + h) % kParts : 0);
    best = std::min(best, emscripten_get_now() - t0);
  }
  return best;
}

}  // namespace

int main() {
  std::printf("| d | kernel | from DRAM (ms) | from cache (ms) |\n|---|---|---:|---:|\n");
  for (std::size_t d : {std::size_t(64), std::size_t(128)}) {
    const std::size_t head = kKeys * d;
    std::vector<float> rows(kParts * head), q(4 * d), t(kKeys * 4), z(4 * d);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = float(i % 1000) * 1e-3f - 0.5f;
    for (std::size_t i = 0; i < q.size(); ++i) q[i] = float(i % 17) * 1e-2f;
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = 1.0f / float(1 + i % 5);
    const float* qs[4] = {q.data(), q.data() + d, q.data() + 2 * d, q.data() + 3 * d};
    float* zs[4] = {z.data(), z.data() + d, z.data() + 2 * d, z.data() + 3 * d};
    auto part = [&](std::size_t p) { return rows.data() + p * head; };
    auto row = [&](const char* name, auto fn) {
      const double dram = best_ms(true, 24, fn), cached = best_ms(false, 24, fn);
      std::printf("| %zu | %s | %.3f | %.3f |\n", d, name, dram, cached);
    };
    row("stream (the bytes alone)", [&](std::size_t p) { stream(part(p), head, z.data()); });
    row("scores, 1 query (dot_rows)", [&](std::size_t p) { simd::dot_rows(qs[0], part(p), d, kKeys, d, t.data()); });
    row("scores, 2 queries (dot_rows2)", [&](std::size_t p) { simd::dot_rows2(qs, part(p), d, kKeys, d, t.data()); });
    row("scores, 4 queries (dot_rows4)", [&](std::size_t p) { simd::dot_rows4(qs, part(p), d, kKeys, d, t.data()); });
    row("weighted sum, 1 query (weighted_rows)", [&](std::size_t p) { simd::weighted_rows(t.data(), part(p), d, kKeys, d, z.data()); });
    row("weighted sums, 2 queries (weighted_rows2)", [&](std::size_t p) { simd::weighted_rows2(t.data(), part(p), d, kKeys, d, zs); });
    row("weighted sums, 4 queries (weighted_rows4)", [&](std::size_t p) { simd::weighted_rows4(t.data(), part(p), d, kKeys, d, zs); });
  }
  // The single-row f16 projection: a 2048 x 2048 weight (8.4 MB), one of
  // eight different ones each time (DRAM) or the same one (cache, L3).
  const std::size_t n = 2048, k = 2048, weights = 8;
  std::vector<float> w(n * k), x(k), y(n);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(i % 997) * 1e-4f - 0.05f;
  for (std::size_t i = 0; i < k; ++i) x[i] = float(i % 13) * 1e-2f;
  std::vector<PackedWeight> packed;
  for (std::size_t i = 0; i < weights; ++i) packed.push_back(pack_reduced(w.data(), n, k, WeightFormat::f16));
  auto project = [&](bool dram) {
    double best = 1e30;
    for (int r = 0; r < 24; ++r) {
      const double t0 = emscripten_get_now();
      simd::linear(x.data(), 1, k, packed[dram ? std::size_t(r) % weights : 0], nullptr, y.data(), n);
      best = std::min(best, emscripten_get_now() - t0);
    }
    return best;
  };
  std::printf("| - | f16 projection, 1 row, 2048 x 2048 (linear) | %.3f | %.3f |\n", project(true), project(false));
  std::printf("\n%zu heads x %zu keys a row of the attention kernels (16.8 MB at d = 128), best of 24.\n", kHeads, kKeys);
}
