// The thread pool runs every task exactly once, loop after loop, and the
// layer's results do not depend on the thread count, bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "mha.hpp"
#include "random_vector.hpp"
#include "thread_pool.hpp"

namespace {

TEST(ThreadPool, RunsEveryTaskExactlyOnceAcrossManyLoops) {
  mha::ThreadPool pool;
  pool.resize(4);
  for (std::size_t tasks : {1, 2, 3, 17, 1000}) {
    for (int loop = 0; loop < 50; ++loop) {
      std::vector<std::atomic<int>> hits(tasks);
      pool.run(tasks, [&](std::size_t t, std::size_t worker) {
        ASSERT_LT(worker, pool.size());
        hits[t].fetch_add(1);
      });
      for (std::size_t t = 0; t < tasks; ++t) ASSERT_EQ(hits[t].load(), 1) << "task " << t;
    }
  }
  pool.resize(1);
  EXPECT_EQ(pool.size(), 1u);
}

// Six heads of width d: 4 takes the narrow path, 16 the tiles.
std::vector<float> run_layer(int threads, std::int64_t d, mha::NeedWeights need_weights, bool causal) {
  mha::set_num_threads(threads);
  const std::int64_t E = 6 * d;
  mha::MultiheadAttention layer({E, 6, 0, 0, true, true, false}, 5);
  const std::int64_t B = 3, L = 150;
  const std::vector<float> x = random_vector(B * L * E, 9);
  const std::size_t S = layer.source_len(L);
  std::vector<float> out(B * L * E), weights(B * 6 * L * S), heads(B * L * E);
  mha::ForwardOptions o;
  o.need_weights = need_weights;
  o.is_causal = causal;
  layer.forward({B, L, L, x.data(), nullptr, nullptr}, o, {out.data(), weights.data(), heads.data(), nullptr});
  out.insert(out.end(), heads.begin(), heads.end());
  if (need_weights != mha::NeedWeights::none) out.insert(out.end(), weights.begin(), weights.end());
  return out;
}

TEST(Threads, ResultsAreBitIdenticalForAnyThreadCount) {
  for (std::int64_t d : {4, 16})
    for (auto w : {mha::NeedWeights::none, mha::NeedWeights::average, mha::NeedWeights::per_head})
      for (bool causal : {false, true}) {
        const auto one = run_layer(1, d, w, causal);
        EXPECT_EQ(run_layer(2, d, w, causal), one);
        EXPECT_EQ(run_layer(3, d, w, causal), one);
      }
  mha::set_num_threads(1);
}

// Heads packed one at a time by several threads (too many keys to pack them
// all at once): still bit-identical.
std::vector<float> run_long_keys(int threads) {
  mha::set_num_threads(threads);
  // 8 heads of width 9 over 45k keys of width 1: more than the 32 MiB packed at once.
  mha::MultiheadAttention layer({72, 8, 1, 1, true, true, true}, 6);
  const std::int64_t Lq = 3, Lk = 45000;
  std::vector<float> q = random_vector(Lq * 72, 10), kv = random_vector(Lk, 11), out(Lq * 72);
  layer.forward({1, Lq, Lk, q.data(), kv.data(), kv.data()}, {}, {out.data(), nullptr, nullptr, nullptr});
  return out;
}

TEST(Threads, HeadsPackedOneAtATimeAreBitIdenticalForAnyThreadCount) {
  const auto one = run_long_keys(1);
  EXPECT_EQ(run_long_keys(2), one);
  EXPECT_EQ(run_long_keys(3), one);
  mha::set_num_threads(1);
}

TEST(Threads, ThreadCountIsClampedToWhatTheBuildCanRun) {
  mha::set_num_threads(0);
  EXPECT_EQ(mha::num_threads(), 1);
  mha::set_num_threads(1 << 20);
  EXPECT_EQ(mha::num_threads(), mha::max_threads());
  mha::set_num_threads(1);
}

}  // namespace
