// The forward pass of a decoder-only transformer over one micro-batch:
//
//   x = embd[token] (* embd_scale)
//   per layer:  x += attention block (norm, Q/K/V, RoPE, K/V into the cache, attention, Wo)
//               x += feed-forward block (norm, gate/up, SwiGLU or GeGLU, down)
//               x += control vector of the layer (when one is set)
//   logits of the wanted rows = Wout · norm(x)
//
// What differs between architectures is read from the model's ArchTraits and
// its optional tensors (biases, Q/K norms, post-norms). Scratch buffers are kept
// between calls, sized for the largest micro-batch seen.
#pragma once

#include <cstdint>
#include <vector>

#include "../kernels/threadpool.h"
#include "../kv_cache.h"
#include "lora.h"
#include "model.h"

namespace pyllama {

// A batch of tokens; tokens of different sequences may share it.
struct Batch {
    int64_t n_tokens = 0;
    const int32_t* token = nullptr;  // (n_tokens)
    const int32_t* pos = nullptr;    // (n_tokens)
    const uint64_t* seqs = nullptr;  // (n_tokens) bit set of sequence ids; attention follows the lowest
    const uint8_t* logits = nullptr; // (n_tokens) 1 = return this token's output
    bool embd = false;               // outputs are final hidden states (n_embd) rather than logits (n_vocab)
};

class Decoder {
   public:
    Decoder(const Model& model, KvCache& kv, ThreadPool& pool, const LoraSet& lora)
        : m_(model), kv_(kv), pool_(pool), lora_(lora) {}

    // Tokens [i0, i0 + n) of the batch, whose K/V go to the cache cells
    // `cells` (n, already claimed). Writes the logits of the flagged tokens,
    // in batch order, to out (n_outputs, n_vocab); with b.embd their final
    // normed hidden states instead (n_outputs, n_embd), what the LM head would read.
    void forward(const Batch& b, int64_t i0, int64_t n, const int32_t* cells, float* out);

    // Control vectors (llama.cpp's --control-vector): (n_layer, n_embd) added to the
    // output of every layer whose row is not all zero; empty: none.
    void set_control_vector(std::vector<float> v);

   private:
    void prepare(const Batch& b, int64_t i0, int64_t n, const int32_t* cells);
    void attention_block(int64_t il, int64_t n);
    void store_kv(int64_t il, int64_t n, const float* k, const float* v);
    void feed_forward_block(int64_t il, int64_t n);
    void output_logits(const Batch& b, int64_t i0, int64_t n, float* out);
    // y (n, n_out) = x (n, n_in) · Wᵀ, plus every attached adapter's s' · B (A x)
    // on the rows whose sequence (row_seq) gives it a scale. role < 0: the output.
    void mm(const WeightView& w, int64_t il, int role, const float* x, int64_t n, int64_t n_in, float* y,
            int64_t n_out, const int32_t* row_seq);

    const Model& m_;
    KvCache& kv_;
    ThreadPool& pool_;
    const LoraSet& lora_;
    // scratch for one micro-batch of n tokens
    std::vector<float> x_, cur_, q_, k_, v_, attn_, o_, gate_, up_;  // (n, ...) activations
    std::vector<float> cs_, cs_swa_;                                 // (n, n_rot) RoPE angles
    std::vector<int32_t> pos_, seq0_;                                // (n)
    const int32_t* cells_ = nullptr;                                 // (n) where each token's K/V go
    std::vector<float> cvec_;                                        // (n_layer, n_embd) or empty
    std::vector<uint8_t> cvec_on_;                                   // (n_layer) a row to add
    VisibleCells vis_, vis_swa_;
    std::vector<float> lora_t_, lora_u_, lora_s_;                    // (n, r), (n, n_out), (n) LoRA deltas
    std::vector<int32_t> out_seq_;                                   // (n_out) sequence of each output row
};

}  // namespace pyllama
