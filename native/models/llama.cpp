// The llama family: Llama 2/3, Mistral, SmolLM (arch "llama"), Qwen2 (biases on
// Q, K and V) and Qwen3 (per-head RMSNorm of Q and K before RoPE).
//
//   x = embd[token]
//   per layer:  h = x + Wo · attn(rope(Wq·n(x) [+bq]), rope(Wk·n(x) [+bk]), Wv·n(x) [+bv])
//               x = h + Wdown · (silu(Wgate·n(h)) * Wup·n(h))          n = RMSNorm
//   logits = Wout · n(x)          (Wout = embd when the output is tied)
//
// Qwen2/3 rotate with NEOX pairs (i, i + n_rot/2); llama rotates (2i, 2i+1).
#include <cmath>

#include "model.h"

namespace pyllama {

ArchTraits llama_traits(const ModelParams& p, Arch arch) {
    ArchTraits t{};
    t.arch = arch;
    t.rope_neox = arch != Arch::Llama;
    t.act = FfnAct::Swiglu;
    t.embd_scale = 1.0f;
    t.q_scale = 1.0f;
    t.kq_scale = 1.0f / std::sqrt((float)p.head_dim_k);
    t.post_norms = false;
    return t;
}

}  // namespace pyllama
