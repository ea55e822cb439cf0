// The parallel loops the layer runs on the thread pool: tasks, and a linear
// layer split into tasks. Every split writes disjoint outputs with a fixed
// order of operations, so results are bit-identical for any thread count.
#pragma once

#include <cstddef>

#include "kernels.hpp"
#include "thread_pool.hpp"

namespace mha {

// Tasks per thread a parallel loop aims for: tasks are claimed as threads
// come free, so with several each the loop ends nearly together on every
// thread even when one of them started late or was descheduled.
inline constexpr std::size_t kTasksPerThread = 8;

// Below this many multiply-adds a parallel loop costs more (waking the
// workers, ~10 us in a browser or Node) than it saves.
inline constexpr std::size_t kParallelWork = 1 << 16;

// pool.run, or a plain loop on the caller when the work is small.
void run_tasks(ThreadPool& pool, std::size_t tasks, std::size_t work, const ThreadPool::Task& fn);

// y = x . W^T + bias spread over the pool in tasks of (block of rows, range
// of column panels): rows alone when there are many, columns too when there
// are few (a decoding step has one row).
void parallel_linear(ThreadPool& pool, const float* x, std::size_t m, std::size_t x_stride, const PackedWeight& w,
                     const float* bias, float* y, std::size_t y_stride);

}  // namespace mha
