// The llama family: Llama 2/3, Mistral, SmolLM (arch "llama"), Qwen2 (biases on
// Q, K and V) and Qwen3 (per-head RMSNorm of Q and K before RoPE).
//
//   x = embd[token]
//   per layer:  h = x + Wo · attn(rope(Wq·n(x) [+bq]), rope(Wk·n(x) [+bk]), Wv·n(x) [+bv])
//               x = h + Wdown · (silu(Wgate·n(h)) * Wup·n(h))          n = RMSNorm
//   logits = Wout · n(x)          (Wout = embd when the output is tied)
//
// Qwen2/3 rotate with NEOX pairs (i, i + n_rot/2); llama rotates (2i, 2i+1).
// Which member has which of these is a row of architectures.cpp.
#include <cmath>

#include "model.h"

namespace pyllama {

ArchTraits llama_traits(const ModelParams& p, const ArchInfo& info) {
    ArchTraits t{};
    t.info = info;
    t.act = FfnAct::Swiglu;
    t.embd_scale = 1.0f;
    t.q_scale = 1.0f;
    t.kq_scale = 1.0f / std::sqrt((float)p.head_dim_k);
    return t;
}

}  // namespace pyllama
