// The forward pass of an encoder (models/bert.cpp) over whole sequences:
//
//   x = LayerNorm(embd[token] + type_embd[0] [+ pos_embd[pos]])
//   per layer:  x = attention block (Q/K/V, RoPE or ALiBi, non-causal attention, Wo, norms)
//               x = feed-forward block (GELU / GEGLU / SwiGLU, norms)
//   the flagged tokens' rows of x are the output (n_embd floats each)
//
// Attention is non-causal: a token sees every token of its own sequence (the
// lowest of its sequence ids) and no other. Keys and values are this batch's
// own rows (no cache), stored in F16 as llama.cpp's flash attention takes them,
// and visited in position order, so a sequence's result does not depend on the
// other sequences of its batch or on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "../kernels/threadpool.h"
#include "decoder.h"
#include "model.h"

namespace pyllama {

class Encoder {
   public:
    Encoder(const Model& model, ThreadPool& pool) : m_(model), pool_(pool) {}

    // Tokens idx[0, n) of the batch: every token of the sequences they belong to.
    // Writes the final hidden state of token idx[i] to out + out_row[i] * n_embd
    // when out_row[i] >= 0.
    void forward(const Batch& b, const int64_t* idx, int64_t n, const int64_t* out_row, float* out);

    // The classifier head of a reranker over n pooled rows x (n, n_embd):
    // out (n, n_cls_out) = [cls_out ·] tanh(cls · x + cls_b) [+ cls_out_b].
    void classify(const float* x, int64_t n, float* out);

   private:
    void prepare(const Batch& b, const int64_t* idx, int64_t n);
    void embed_inputs(int64_t n);
    void attention_block(int64_t il, int64_t n);
    void feed_forward_block(int64_t il, int64_t n);

    const Model& m_;
    ThreadPool& pool_;
    // scratch for one micro-batch of n tokens
    std::vector<int32_t> tok_, pos_;                                   // (n)
    std::vector<float> x_, cur_, q_, k_, v_, qkv_, attn_, o_, up_, gate_;  // (n, ...) activations
    std::vector<uint8_t> k16_, v16_;                                   // (n, n_head_kv, head_dim) F16
    std::vector<float> cs_, slopes_;                                   // (n, n_rot) RoPE angles; (n_head)
    std::vector<int32_t> cells_;                                       // tokens sorted by (sequence, position)
    std::vector<int64_t> begin_, end_;                                 // (n) each token's sequence in cells_
};

}  // namespace pyllama
