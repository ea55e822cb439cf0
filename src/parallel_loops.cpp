#include "parallel_loops.hpp"

#include <algorithm>

#include "buffers.hpp"

namespace mha {
namespace {

// Rows of a GEMM per task: whole micro-kernel row groups, enough work to be
// worth a hand-off.
constexpr std::size_t kTaskRows = 8 * kGemmRows;

}  // namespace

void run_tasks(ThreadPool& pool, std::size_t tasks, std::size_t work, const ThreadPool::Task& fn) {
  if (work < kParallelWork) {
    for (std::size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  pool.run(tasks, fn);
}

void parallel_linear(ThreadPool& pool, const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w,
                     const float* bias, float* y, std::size_t y_stride) {
  constexpr std::size_t P = PackedWeight::kPanel;
  const std::size_t threads = pool.size();
  if (threads == 1 || m * w.n * w.k < kParallelWork) {
    simd::linear(x, m, x_stride, w, bias, y, y_stride);
    return;
  }
  const std::size_t panels = ceil_div(w.n, P), row_blocks = ceil_div(m, kTaskRows);
  const std::size_t col_parts = std::min(panels, ceil_div(kTasksPerThread * threads, row_blocks));
  const std::size_t per_part = ceil_div(panels, col_parts), parts = ceil_div(panels, per_part);
  pool.run(row_blocks * parts, [&](std::size_t t, std::size_t) {
    const std::size_t r0 = (t / parts) * kTaskRows, rows = std::min(kTaskRows, m - r0);
    const std::size_t p0 = (t % parts) * per_part, p1 = std::min(panels, p0 + per_part), col0 = p0 * P;
    simd::linear_panels(x + r0 * x_stride, rows, x_stride, w, p0, p1, bias ? bias + col0 : nullptr,
                        y + r0 * y_stride + col0, y_stride);
  });
}

}  // namespace mha
