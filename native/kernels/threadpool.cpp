#include "threadpool.h"

#include <memory>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define PYLLAMA_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define PYLLAMA_PAUSE() __asm__ __volatile__("yield")
#else
#define PYLLAMA_PAUSE() std::this_thread::yield()
#endif

namespace pyllama {

namespace {
constexpr int kSpinIterations = 1 << 16;  // a worker's spin before it sleeps at poll 50 (about a millisecond)

// Pin the calling thread to one CPU (best effort: a CPU outside the process's allowed
// set is simply refused by the OS).
void pin_to(int cpu) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
#else
    (void)cpu;
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads, int poll, std::vector<int> cpus)
    : n_threads_(n_threads < 1 ? 1 : n_threads),
      spin_limit_((int)((int64_t)kSpinIterations * (poll < 0 ? 0 : poll > 100 ? 100 : poll) / 50)),
      cpus_(std::move(cpus)) {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back(&ThreadPool::worker, this, i);
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
    if (!cpus_.empty() && pinned_caller_ != std::this_thread::get_id()) {
        pin_to(cpus_[0]);
        pinned_caller_ = std::this_thread::get_id();
    }
    if (n_threads_ == 1) {
        fn(0, 1);
        return;
    }
    // A worker still finishing its claim on the previous job cannot exist here:
    // that job returned only once all its calls were done. A late worker that
    // claims now gets an ith >= nth (nothing) or a call of this job.
    job_.store(&fn, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    next_.store(0, std::memory_order_release);
    {
        std::lock_guard<std::mutex> lock(mu_);
        generation_.fetch_add(1, std::memory_order_release);
        if (sleeping_ > 0) cv_.notify_all();
    }
    take_calls(n_threads_);
    // Only calls a worker claimed and is running remain; a worker preempted in the
    // middle of one is given the core back rather than spun against.
    wait_until([&] { return done_.load(std::memory_order_acquire) >= n_threads_; });
}

void ThreadPool::take_calls(int nth) {
    for (int ith; (ith = next_.fetch_add(1, std::memory_order_acq_rel)) < nth;) {
        (*job_.load(std::memory_order_acquire))(ith, nth);
        done_.fetch_add(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::worker(int index) {
    if (!cpus_.empty()) pin_to(cpus_[index % cpus_.size()]);
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        for (int spin = 0; g == seen && spin < spin_limit_; ++spin) {
            PYLLAMA_PAUSE();
            g = generation_.load(std::memory_order_acquire);
        }
        if (g == seen) {
            std::unique_lock<std::mutex> lock(mu_);
            ++sleeping_;
            cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
            --sleeping_;
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load()) return;
        take_calls(n_threads_);
    }
}

namespace {
std::unique_ptr<ThreadPool>& pool_slot() {
    static std::unique_ptr<ThreadPool> pool;
    return pool;
}
}  // namespace

ThreadPool& default_pool() {
    auto& p = pool_slot();
    if (!p) set_default_threads(0);
    return *p;
}

void set_default_threads(int n) {
    if (n <= 0) n = (int)std::thread::hardware_concurrency();
    if (n <= 0) n = 1;
    auto& p = pool_slot();
    if (p && p->n_threads() == n) return;
    p.reset();
    p = std::make_unique<ThreadPool>(n);
}

}  // namespace pyllama
