// A fixed set of worker threads that run the tasks of one parallel loop at a
// time; the calling thread works too. Tasks are claimed from an atomic
// counter, so a task's output must not depend on which thread runs it (every
// split in the library writes disjoint outputs with a fixed order of
// operations, which keeps results bit-identical for any thread count).
//
// In a WebAssembly build without pthreads the pool has one thread, the caller.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace mha {

class ThreadPool {
 public:
  // A borrowed callable, fn(task, worker), valid while run() runs: nothing
  // is copied or allocated. (A std::function of the layer's lambdas, which
  // capture more than its small buffer holds, allocated on every call.)
  class Task {
   public:
    template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Task>>>
    Task(const F& fn)  // NOLINT: implicit, so that a lambda can be passed as it is
        : fn_(&fn), call_([](const void* f, std::size_t task, std::size_t worker) {
            (*static_cast<const F*>(f))(task, worker);
          }) {}
    void operator()(std::size_t task, std::size_t worker) const { call_(fn_, task, worker); }

   private:
    const void* fn_;
    void (*call_)(const void*, std::size_t, std::size_t);
  };

  // The most threads this build can run (1 without thread support).
  static std::size_t max_threads();

  ThreadPool() = default;
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads used by run(), the caller included; clamped to [1, max_threads()].
  void resize(std::size_t threads);
  std::size_t size() const { return workers_.size() + 1; }

  // fn(task, worker) for every task in [0, tasks); worker in [0, size()).
  // Returns when all are done.
  void run(std::size_t tasks, const Task& fn);

 private:
  void work(std::size_t worker);
  void drain(std::size_t worker);
  void wait_until_idle();
  void stop();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  // Guarded by mutex_: a run's parameters, and how many workers are inside
  // drain(). run() starts a new loop only when none is, so no worker can mix
  // one loop's counter with another's tasks.
  // Bumped per run(), under mutex_, to wake the workers; atomic so that a
  // worker can also spin on it without the lock.
  std::atomic<std::size_t> generation_{0};
  std::size_t active_ = 0;
  bool stopping_ = false;
  const Task* fn_ = nullptr;
  std::size_t tasks_ = 0;
  std::atomic<std::size_t> next_{0};  // next task to claim
  std::atomic<std::size_t> done_{0};  // tasks finished
};

// The library's pool, shared by every layer.
ThreadPool& thread_pool();

}  // namespace mha
