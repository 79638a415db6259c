// The architectures pyllama knows, in one table: what each GGUF
// general.architecture name means for loading a model and for its forward pass.
// The Python side reads the same table (_native.architectures()), so adding an
// architecture is one row here (plus its family's code when the family is new).
#pragma once

#include <string>
#include <vector>

namespace pyllama {

// How hyper-parameters are read and which traits function (models/<family>.cpp) applies.
enum class Family { Llama, Gemma3, Bert };

// Where a token's position enters the model.
enum class Positions {
    Rope,      // rotary embedding of Q and K
    Absolute,  // a learned position_embd row added to the input embedding (BERT)
    Alibi,     // a per-head linear bias of the attention scores by distance (Jina BERT v2)
};

struct ArchInfo {
    const char* name;  // general.architecture
    Family family;
    bool decoder;      // causal forward pass with a KV cache and logits (text generation)
    bool encoder;      // non-causal forward pass to hidden states, no KV cache (embeddings)
    Positions positions;
    bool rope_neox;    // RoPE rotates pairs (i, i + n_rot/2) rather than (2i, 2i + 1)
    bool qk_norm;      // per-head RMSNorm of Q and K (attn_q_norm, attn_k_norm)
    bool qkv_bias;     // biases on Q, K and V (attn_q/k/v.bias)
    bool post_norms;   // RMSNorm after attention and after the FFN (post_attention_norm, post_ffw_norm)
    int swa_period;    // sliding-window layers unless il % swa_period == swa_period - 1; 0 = none
};

// Every architecture, in a fixed order.
const std::vector<ArchInfo>& architectures();
// nullptr when the name is not in the table.
const ArchInfo* find_architecture(const std::string& name);
const char* family_name(Family f);
const char* positions_name(Positions p);

}  // namespace pyllama
