#include "thread_pool.hpp"

#include <algorithm>
#include <chrono>

namespace mha {

std::size_t ThreadPool::max_threads() {
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  return 1;  // the single-threaded WebAssembly build
#elif defined(MHA_WASM_MAX_THREADS)
  // A threaded WebAssembly build: no more threads than pre-started workers,
  // since starting one later needs the (then busy) event loop.
  return std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, MHA_WASM_MAX_THREADS);
#else
  return std::max(1u, std::thread::hardware_concurrency());
#endif
}

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stopping_ = false;
}

void ThreadPool::resize(std::size_t threads) {
  threads = std::clamp<std::size_t>(threads, 1, max_threads());
  if (threads == size()) return;
  stop();
  for (std::size_t w = 1; w < threads; ++w) workers_.emplace_back([this, w] { work(w); });
}

void ThreadPool::drain(std::size_t worker) {
  for (std::size_t t; (t = next_.fetch_add(1)) < tasks_;) {
    (*fn_)(t, worker);
    done_.fetch_add(1, std::memory_order_release);
  }
}

// How long a worker that has run out of tasks spins, watching for the next
// loop, before it sleeps. Why: a forward pass is several parallel loops
// microseconds apart, and calls often come back to back, while waking a
// sleeping worker is slow where idle vCPUs halt (bench/limits.md).
constexpr auto kSpin = std::chrono::microseconds(500);

void ThreadPool::work(std::size_t worker) {
  std::size_t seen = 0;
  for (;;) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1; generation_.load(std::memory_order_acquire) == seen; ++i)
      if (i % 256 == 0 && std::chrono::steady_clock::now() > until) break;  // the clock is a call into JS in wasm
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      ++active_;
    }
    drain(worker);
    std::lock_guard<std::mutex> lock(mutex_);
    --active_;
  }
}

// Spins rather than sleeps: a browser's main thread may not block.
void ThreadPool::wait_until_idle() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (active_ == 0) return;
    }
    std::this_thread::yield();
  }
}

void ThreadPool::run(std::size_t tasks, const Task& fn) {
  if (tasks == 0) return;
  if (workers_.empty() || tasks == 1) {
    for (std::size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  wait_until_idle();  // a worker late for the previous loop has left it
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    tasks_ = tasks;
    next_.store(0);
    done_.store(0);
    ++generation_;
  }
  wake_.notify_all();
  drain(0);
  while (done_.load(std::memory_order_acquire) < tasks) std::this_thread::yield();
  wait_until_idle();  // no worker still holds fn, which dies with this call
}

ThreadPool& thread_pool() {
  static ThreadPool pool;
  return pool;
}

}  // namespace mha
