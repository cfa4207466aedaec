// How the fused PaiNN (painn.h, painn_reverse.h) splits its work over threads: a range of atoms,
// edges or edge rows is cut into at most `threads` contiguous blocks, block b always the same part
// of the range, and the blocks run at once, block 0 on the calling thread and the others on
// workers the calling thread keeps (one pool per calling thread, started on first use).
//
// A block that scatters (edges into atoms) accumulates into its own buffer, and the buffers are
// summed in block order: results depend on the number of blocks (the order of a few sums), never
// on which thread ran which block or when.
//
// Why not OpenMP: an evaluation meets a few dozen joins, and libgomp's threads spin up to ~300,000
// times (milliseconds) at each before sleeping. On a machine whose cores are shared with other
// processes a thread waits for a descheduled partner at every join: two threads were 10-30x slower
// than one on a 21-atom molecule. Here a waiting thread spins about 50 µs, then sleeps.
// While blocks run on several threads, each thread holds MKL (torch's BLAS on x86) to itself
// through MKL's thread-local setting; where torch has another BLAS, products take the kernel's
// own loops instead (gemm.h): a BLAS would start threads of its own under each block.

#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

// MKL's thread count for the calling thread only (0: back to the global one); returns the previous
// one. Null where torch is built without MKL.
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));

namespace mlffd {

// The largest thread count the kernel accepts (more only oversubscribes the cores).
constexpr int MAX_THREADS = 1024;

// Part b of [0, count) cut into `blocks` contiguous parts whose sizes differ by at most one.
struct Span {
  int64_t begin, end;
};
inline Span block_span(int64_t count, int blocks, int b) {
  const int64_t base = count / blocks, extra = count % blocks;
  const int64_t begin = b * base + std::min<int64_t>(b, extra);
  return {begin, begin + base + (b < extra ? 1 : 0)};
}

// How many blocks `threads` threads make of count items, each block at least grain items (at least
// one block): small ranges stay on one thread, where waking others costs more than they save.
inline int block_count(int threads, int64_t count, int64_t grain) {
  return int(std::max<int64_t>(1, std::min<int64_t>(threads, count / grain)));
}

namespace detail {

// Whether this thread is running one of several blocks.
inline bool& in_shared_work() {
  thread_local bool shared = false;
  return shared;
}

// Marks this thread as running one of several blocks, and holds MKL to it, while it lives.
class SharedWork {
 public:
  SharedWork() : mkl_(MKL_Set_Num_Threads_Local ? MKL_Set_Num_Threads_Local(1) : 0) { in_shared_work() = true; }
  ~SharedWork() {
    in_shared_work() = false;
    if (MKL_Set_Num_Threads_Local) MKL_Set_Num_Threads_Local(mkl_);
  }

 private:
  int mkl_;
};

// Spins about 50 µs for done() to hold, then sleeps on ready until it does.
template <typename Done>
void await(std::mutex& mutex, std::condition_variable& ready, const Done& done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  for (int k = 1; !done(); ++k) {
    if (k % 64 == 0 && std::chrono::steady_clock::now() > until) {
      std::unique_lock<std::mutex> lock(mutex);
      ready.wait(lock, done);
      return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}

// The workers of one calling thread. run() hands them a job and takes part in it as block 0.
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  void run(int blocks, const std::function<void(int)>& body) {
    while (int(workers_.size()) < blocks - 1) {
      const int index = int(workers_.size()) + 1;
      workers_.emplace_back([this, index] { work(index); });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      blocks_ = blocks;
      pending_.store(blocks - 1);
      generation_.fetch_add(1);
    }
    start_.notify_all();
    {
      SharedWork shared;
      body(0);
    }
    await(mutex_, finished_, [this] { return pending_.load() == 0; });
  }

 private:
  void work(int index) {
    uint64_t seen = 0;
    for (;;) {
      await(mutex_, start_, [&] { return generation_.load() != seen || stop_; });
      const std::function<void(int)>* body;
      int blocks;
      {
        std::lock_guard<std::mutex> lock(mutex_);  // the current job as a whole, never half of the next
        if (stop_) return;
        seen = generation_.load();
        body = body_;
        blocks = blocks_;
      }
      if (index < blocks) {
        {
          SharedWork shared;
          (*body)(index);
        }
        if (pending_.fetch_sub(1) == 1) {
          std::lock_guard<std::mutex> lock(mutex_);  // the caller may be going to sleep
          finished_.notify_one();
        }
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, finished_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* body_ = nullptr;
  int blocks_ = 0;
};

// This thread's pool. A process forked from one with workers has none of them: it starts its own.
inline Pool& pool() {
  thread_local std::unique_ptr<Pool> own;
  thread_local pid_t owner = 0;
  if (!own || owner != getpid()) {
    if (own && owner != getpid()) own.release();  // its workers live in the parent only
    own = std::make_unique<Pool>();
    owner = getpid();
  }
  return *own;
}

}  // namespace detail

// Calls body(b) for every block b < blocks, at once on `blocks` threads (the caller's and its
// pool's). body must not throw (checks belong before the call).
template <typename Body>
void parallel_blocks(int blocks, const Body& body) {
  if (blocks <= 1) {
    body(0);
    return;
  }
  detail::pool().run(blocks, std::function<void(int)>(std::cref(body)));
}

// Calls body(begin, end) on each block of [0, count) (see block_count), at once.
template <typename Body>
void parallel_ranges(int threads, int64_t count, int64_t grain, const Body& body) {
  const int blocks = block_count(threads, count, grain);
  parallel_blocks(blocks, [&](int b) {
    const Span span = block_span(count, blocks, b);
    body(span.begin, span.end);
  });
}

}  // namespace mlffd
