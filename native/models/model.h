// A decoder-only transformer: hyper-parameters, weights (views of the GGUF
// mapping, Q4_0/Q4_1 packed at load) and the per-architecture choices.
//
// The weights are borrowed: whoever builds a Model keeps the mapping alive.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/matmul.h"
#include "architectures.h"

namespace pyllama {

enum class FfnAct { Swiglu, Geglu };

// Hyper-parameters, read from GGUF metadata by the Python loader.
struct ModelParams {
    std::string arch;           // general.architecture: a decoder of architectures.h
    int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
    int64_t head_dim_k = 0, head_dim_v = 0, n_ff = 0, n_rot = 0;
    float norm_eps = 1e-5f;
    float rope_base = 10000.0f, rope_scale = 1.0f;          // global layers
    float rope_base_swa = 10000.0f, rope_scale_swa = 1.0f;  // sliding-window layers
    std::vector<float> rope_freq_factors;  // (n_rot/2) global layers' per-pair divisors, or empty
    int32_t sliding_window = 0;
    std::vector<uint8_t> swa_layers;  // (n_layer) 1 = sliding-window layer; empty = none
    float final_logit_softcap = 0.0f;
    float attn_logit_softcap = 0.0f;
};

// Decisions that follow from the architecture (llama.cpp's graph for it): its
// row of the table and what its family computes from the hyper-parameters.
struct ArchTraits {
    ArchInfo info;
    FfnAct act;
    float embd_scale;      // token embeddings are multiplied by this
    float q_scale;         // queries are multiplied by this before attention ...
    float kq_scale;        // ... and the scores by this
};

// Per architecture family (models/llama.cpp, models/gemma3.cpp). Throws
// std::invalid_argument naming an architecture that is not a decoder of the table.
ArchTraits arch_traits(const ModelParams& p);
ArchTraits llama_traits(const ModelParams& p, const ArchInfo& info);
ArchTraits gemma3_traits(const ModelParams& p, const ArchInfo& info);

struct LayerWeights {
    const float* attn_norm = nullptr;                  // (n_embd)
    WeightView wq{}, wk{}, wv{}, wo{};
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;  // optional biases
    const float *q_norm = nullptr, *k_norm = nullptr;  // (head_dim) optional per-head RMSNorm
    const float* post_attn_norm = nullptr;             // gemma
    const float* ffn_norm = nullptr;                   // (n_embd)
    WeightView gate{}, up{}, down{};
    const float* post_ffw_norm = nullptr;              // gemma
};

class Model {
   public:
    explicit Model(ModelParams p);

    // Attach one tensor by role (tok_embd, output, output_norm, attn_norm, wq,
    // wk, wv, wo, bq, bk, bv, bo, q_norm, k_norm, post_attn_norm, ffn_norm,
    // gate, up, down, post_ffw_norm); layer is ignored for whole-model roles.
    // Vectors (norms, biases) must be F32 with `n_cols` elements. Q4_0/Q4_1
    // matrices are packed here (once per tensor).
    void set_tensor(const std::string& role, int64_t layer, const void* data, GgmlType type, int64_t n_rows,
                    int64_t n_cols);
    // Check every required tensor and its shape (and pack tied output embeddings).
    // Throws std::invalid_argument naming the first problem.
    void finalize();

    const ModelParams& params() const { return p_; }
    const ArchTraits& traits() const { return t_; }
    const LayerWeights& layer(int64_t i) const { return layers_[i]; }
    const WeightView& tok_embd() const { return tok_embd_; }
    const WeightView& output() const { return output_.data ? output_ : tok_embd_; }
    const float* output_norm() const { return output_norm_; }
    bool is_swa(int64_t il) const { return !p_.swa_layers.empty() && p_.swa_layers[il]; }
    size_t packed_bytes() const;

   private:
    void pack(WeightView& w);

    ModelParams p_;
    ArchTraits t_;
    WeightView tok_embd_{}, output_{};
    const float* output_norm_ = nullptr;
    std::vector<LayerWeights> layers_;
    std::vector<std::vector<uint8_t>> packed_;  // owned packed copies
    bool finalized_ = false;
};

}  // namespace pyllama
