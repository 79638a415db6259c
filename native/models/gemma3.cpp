// Gemma 3: the llama layout plus
//   - token embeddings scaled by sqrt(n_embd);
//   - per-head RMSNorm of Q and K, queries scaled by 1/sqrt(head_dim)
//     (27B: 1/sqrt(n_embd / n_head)) and unscaled scores;
//   - RMSNorm on the attention output and on the FFN output before each residual add;
//   - GeGLU feed-forward: gelu_tanh(Wgate·x) * Wup·x;
//   - interleaved layers: sliding-window ones (window from metadata, RoPE base
//     10000) and every sixth a global one (the model's RoPE base and scaling);
//   - NEOX RoPE, output tied to the embeddings.
// The GGUF converter already folds Gemma's (1 + w) norm weights into w.
#include <cmath>

#include "model.h"

namespace pyllama {

ArchTraits gemma3_traits(const ModelParams& p, const ArchInfo& info) {
    ArchTraits t{};
    t.info = info;
    t.act = FfnAct::Geglu;
    t.embd_scale = std::sqrt((float)p.n_embd);
    const bool is_27b = p.n_layer == 62;
    t.q_scale = is_27b ? 1.0f / std::sqrt((float)(p.n_embd / p.n_head)) : 1.0f / std::sqrt((float)p.head_dim_k);
    t.kq_scale = 1.0f;
    return t;
}

}  // namespace pyllama
