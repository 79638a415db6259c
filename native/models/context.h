// An inference context: one KV cache, a compute thread pool and scratch
// buffers over a Model. One decode() call = one forward pass over a batch.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "../kv_cache.h"
#include "../kernels/threadpool.h"
#include "model.h"

namespace pyllama {

// A batch of tokens; tokens of different sequences may share it.
struct Batch {
    int64_t n_tokens = 0;
    const int32_t* token = nullptr;  // (n_tokens)
    const int32_t* pos = nullptr;    // (n_tokens)
    const uint64_t* seqs = nullptr;  // (n_tokens) bit set of sequence ids; attention follows the lowest
    const uint8_t* logits = nullptr; // (n_tokens) 1 = return this token's logits
};

class ContextFull : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

struct ContextParams {
    int64_t n_ctx = 4096;
    int64_t n_ubatch = 512;   // micro-batch size: a batch is computed this many tokens at a time
    int n_threads = 0;        // <= 0: hardware threads
    GgmlType type_k = GgmlType::F16, type_v = GgmlType::F16;
};

class Context {
   public:
    Context(const Model& model, const ContextParams& cp);

    // Run the batch through the model, storing its K/V in the cache. Writes the
    // logits of the tokens with logits[i] = 1, in batch order, to out
    // (n_outputs, n_vocab). Throws ContextFull (cache untouched) when the cache
    // has fewer free cells than tokens, std::invalid_argument on a bad batch.
    void decode(const Batch& b, float* out);

    KvCache& kv() { return kv_; }
    const KvCache& kv() const { return kv_; }
    const Model& model() const { return m_; }
    const ContextParams& params() const { return cp_; }
    int n_threads() const { return pool_.n_threads(); }

   private:
    void decode_ubatch(const Batch& b, int64_t i0, int64_t n, float* out);
    void layer(int64_t il, int64_t n);

    const Model& m_;
    ContextParams cp_;
    ThreadPool pool_;
    KvCache kv_;
    // scratch for one micro-batch of n tokens
    std::vector<float> x_, cur_, q_, k_, v_, attn_, o_, gate_, up_;  // (n, ...) activations
    std::vector<float> cs_, cs_swa_;                                 // (n, n_rot) RoPE angles
    std::vector<int32_t> cells_, pos_, seq0_;                        // (n)
    VisibleCells vis_, vis_swa_;
};

}  // namespace pyllama
