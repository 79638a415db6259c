// A persistent pool of compute threads with a cheap fork/join barrier.
//
// run(fn) executes fn(ith, nth) on every thread (the caller is thread 0) and
// returns when all are done. Idle workers spin briefly on the generation
// counter before sleeping, so back-to-back ops (hundreds per token) do not pay
// a futex wake-up each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pyllama {

class ThreadPool {
   public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int n_threads() const { return n_threads_; }
    void run(const std::function<void(int ith, int nth)>& fn);

   private:
    void worker(int ith);

    int n_threads_;
    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    int sleeping_ = 0;
};

// The process-wide pool used by kernels when none is given; resized by
// set_default_threads (n <= 0 means the number of hardware threads).
ThreadPool& default_pool();
void set_default_threads(int n);

}  // namespace pyllama
