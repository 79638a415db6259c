// A persistent pool of compute threads with a cheap fork/join.
//
// run(fn) calls fn(ith, nth) once for every ith in [0, nth) and returns when all
// calls are done. The calls are claimed, not assigned: the caller and the workers
// take the next ith until none is left, so a worker the OS has not scheduled
// (more busy threads than cores) is simply not waited for - the caller does its
// share. fn must therefore never wait for another ith (no barrier inside).
// Idle workers spin briefly on the generation counter before sleeping, so
// back-to-back ops (hundreds per token) do not pay a futex wake-up each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace pyllama {

// Waits until done() holds, for work other threads are doing now: a short spin
// (the usual case: microseconds), then the core is yielded, so a thread the OS
// preempted in the middle of that work gets to finish it.
template <class Done>
inline void wait_until(Done done) {
    for (int spin = 0; !done(); ++spin) {
#if defined(__x86_64__)
        if (spin < 4096) {
            _mm_pause();
            continue;
        }
#elif defined(__aarch64__)
        if (spin < 4096) {
            __asm__ __volatile__("yield");
            continue;
        }
#endif
        std::this_thread::yield();
    }
}

class ThreadPool {
   public:
    // poll: how long an idle worker spins before it sleeps, 0..100 (llama.cpp's --poll;
    // 50, the default, is about a millisecond; 0 sleeps at once). cpus: when given, thread
    // i (0 = the first caller of run) is pinned to cpus[i % size] (--cpu-strict 1).
    explicit ThreadPool(int n_threads, int poll = 50, std::vector<int> cpus = {});
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int n_threads() const { return n_threads_; }
    void run(const std::function<void(int ith, int nth)>& fn);

   private:
    void worker(int index);

    int n_threads_;
    int spin_limit_;
    std::vector<int> cpus_;
    std::thread::id pinned_caller_;  // the caller last pinned to cpus_[0]
    std::vector<std::thread> workers_;
    void take_calls(int nth);

    std::atomic<const std::function<void(int, int)>*> job_{nullptr};
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> next_{0};  // the next ith to claim
    std::atomic<int> done_{0};  // calls finished
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
