// An inference context: one KV cache, a compute thread pool and the forward pass
// of a Model (a Decoder, or an Encoder for the BERT family, which has no cache).
// One decode() call = one forward pass over a batch, run micro-batch by micro-batch.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "../kernels/threadpool.h"
#include "../kv_cache.h"
#include "decoder.h"
#include "encoder.h"
#include "lora.h"
#include "model.h"

namespace pyllama {

class ContextFull : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

struct ContextParams {
    int64_t n_ctx = 4096;
    int64_t n_ubatch = 512;   // micro-batch size: a batch is computed this many tokens at a time
    int n_threads = 0;        // <= 0: hardware threads
    int poll = 50;            // compute threads' polling level (ThreadPool)
    std::vector<int> cpus;    // compute threads pinned one per CPU, or empty (ThreadPool)
    GgmlType type_k = GgmlType::F16, type_v = GgmlType::F16;
};

class Context {
   public:
    Context(const Model& model, const ContextParams& cp);

    // Run the batch through the model, storing its K/V in the cache. Writes the
    // outputs of the tokens with logits[i] = 1, in batch order, to out
    // (n_outputs, output_width(b.embd)): logits, or with b.embd final hidden
    // states. Throws ContextFull (cache untouched) when the cache has fewer free
    // cells than tokens, std::invalid_argument on a bad batch.
    //
    // An encoder keeps nothing between calls: each sequence of a batch must be
    // whole in it, and is computed within one micro-batch (sequences are grouped
    // into micro-batches of at most n_ubatch tokens; a longer one is refused).
    // It has hidden states only: b.embd must be set.
    void decode(const Batch& b, float* out);

    // Floats per output row: n_embd for hidden states, n_vocab for logits.
    int64_t output_width(bool embd) const { return embd ? m_.params().n_embd : m_.params().n_vocab; }

    // The reranker's classifier head over n pooled rows x (n, n_embd): out (n, n_cls_out).
    void classify(const float* x, int64_t n, float* out) { encoder_.classify(x, n, out); }

    // Control vectors: (n_layer, n_embd) added to each layer's output; empty: none (decoders only).
    void set_control_vector(std::vector<float> v) { decoder_.set_control_vector(std::move(v)); }
    // LoRA adapters (kept alive by the caller): attached once, in id order; each
    // sequence applies each adapter at its own scale (0 until set), so one batch
    // may hold sequences with different adapters. Returns the adapter's id.
    int attach_lora(const LoraAdapter* adapter);
    int n_lora() const { return (int)lora_.adapters.size(); }
    // Scales of every attached adapter for sequence seq (missing ones: 0).
    void set_lora_scales(int seq, const std::vector<float>& scales);
    std::vector<float> lora_scales(int seq) const;

    KvCache& kv() { return kv_; }
    const KvCache& kv() const { return kv_; }
    const Model& model() const { return m_; }
    const ContextParams& params() const { return cp_; }
    int n_threads() const { return pool_.n_threads(); }

   private:
    void check(const Batch& b) const;
    void encode(const Batch& b, float* out);

    const Model& m_;
    ContextParams cp_;
    ThreadPool pool_;
    KvCache kv_;
    LoraSet lora_;
    Decoder decoder_;
    Encoder encoder_;
    std::vector<int32_t> cells_;  // (n_ubatch) the cells claimed for one micro-batch
};

}  // namespace pyllama
