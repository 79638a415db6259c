// A transformer: hyper-parameters, weights (views of the GGUF mapping, Q4_0/Q4_1
// packed at load) and the per-architecture choices. Decoders (llama, gemma3
// families) and encoders (the BERT family) share this one container; each
// reads the weights its forward pass needs (decoder.h, encoder.h).
//
// The weights are borrowed: whoever builds a Model keeps the mapping alive.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../kernels/matmul.h"
#include "architectures.h"

namespace pyllama {

// Swiglu / Geglu: act(gate) * up; Gelu: gelu(up), no gate (BERT).
enum class FfnAct { Swiglu, Geglu, Gelu };

// Hyper-parameters, read from GGUF metadata by the Python loader.
struct ModelParams {
    std::string arch;           // general.architecture: a row of architectures.h
    int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
    int64_t head_dim_k = 0, head_dim_v = 0, n_ff = 0, n_rot = 0;
    float norm_eps = 1e-5f;
    float rope_base = 10000.0f, rope_scale = 1.0f;          // global layers
    float rope_base_swa = 10000.0f, rope_scale_swa = 1.0f;  // sliding-window layers
    std::vector<float> rope_freq_factors;  // (n_rot/2) global layers' per-pair divisors, or empty
    // YaRN (every layer; ops.h RopeParams): ext_factor 0 = plain RoPE; attn_factor scales cos and sin
    float rope_ext_factor = 0.0f, rope_attn_factor = 1.0f, rope_beta_fast = 32.0f, rope_beta_slow = 1.0f;
    int32_t rope_n_ctx_orig = 0;
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
    bool ffn_bias;         // encoders: the FFN adds ffn_up/ffn_down biases when present
};

// Per architecture family (models/llama.cpp, models/gemma3.cpp, models/bert.cpp).
// Throws std::invalid_argument naming an architecture that is not in the table.
ArchTraits arch_traits(const ModelParams& p);
ArchTraits llama_traits(const ModelParams& p, const ArchInfo& info);
ArchTraits gemma3_traits(const ModelParams& p, const ArchInfo& info);
ArchTraits bert_traits(const ModelParams& p, const ArchInfo& info);

struct LayerWeights {
    const float* attn_norm = nullptr;                  // (n_embd)
    WeightView wq{}, wk{}, wv{}, wo{};
    const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;  // optional biases
    const float *q_norm = nullptr, *k_norm = nullptr;  // (head_dim) optional per-head RMSNorm
    const float* post_attn_norm = nullptr;             // gemma
    const float* ffn_norm = nullptr;                   // (n_embd)
    WeightView gate{}, up{}, down{};
    const float* post_ffw_norm = nullptr;              // gemma
    // encoders (BERT family); LayerNorms have a weight and a bias
    WeightView wqkv{};                                 // (n_embd + 2 n_embd_kv, n_embd) fused Q/K/V rows
    const float* bqkv = nullptr;
    const float *q_norm_b = nullptr, *k_norm_b = nullptr;        // jina: LayerNorm of the whole Q/K row
    const float *attn_out_norm = nullptr, *attn_out_norm_b = nullptr;
    const float *attn_norm_2 = nullptr, *attn_norm_2_b = nullptr;
    const float *up_b = nullptr, *down_b = nullptr;              // (rows of up), (n_embd)
    const float *layer_out_norm = nullptr, *layer_out_norm_b = nullptr;
};

class Model {
   public:
    explicit Model(ModelParams p);

    // Attach one tensor by role; layer is ignored for whole-model roles.
    //   decoders: tok_embd, output, output_norm; per layer attn_norm, wq, wk, wv,
    //     wo, bq, bk, bv, bo, q_norm, k_norm, post_attn_norm, ffn_norm, gate, up,
    //     down, post_ffw_norm
    //   encoders: tok_embd, pos_embd, type_embd, tok_norm, tok_norm_b, cls, cls_b,
    //     cls_out, cls_out_b; per layer wq, wk, wv, bq, bk, bv, wqkv, bqkv, q_norm,
    //     q_norm_b, k_norm, k_norm_b, wo, bo, attn_out_norm, attn_out_norm_b,
    //     attn_norm_2, attn_norm_2_b, gate, up, up_b, down, down_b, layer_out_norm,
    //     layer_out_norm_b
    // Vectors (norms, biases) must be F32 with `n_cols` elements. Q4_0/Q4_1
    // matrices are packed here (once per tensor).
    void set_tensor(const std::string& role, int64_t layer, const void* data, GgmlType type, int64_t n_rows,
                    int64_t n_cols);
    // Check every required tensor and its shape (and pack tied output embeddings).
    // Throws std::invalid_argument naming the first problem.
    void finalize();

    const ModelParams& params() const { return p_; }
    bool is_encoder() const { return t_.info.encoder; }
    const ArchTraits& traits() const { return t_; }
    const LayerWeights& layer(int64_t i) const { return layers_[i]; }
    const WeightView& tok_embd() const { return tok_embd_; }
    const WeightView& output() const { return output_.data ? output_ : tok_embd_; }
    const float* output_norm() const { return output_norm_; }
    bool is_swa(int64_t il) const { return !p_.swa_layers.empty() && p_.swa_layers[il]; }
    size_t packed_bytes() const;

    // encoders
    const WeightView& pos_embd() const { return pos_embd_; }    // (n_pos, n_embd) or absent
    const WeightView& type_embd() const { return type_embd_; }  // (n_types, n_embd) or absent
    const float* tok_norm() const { return tok_norm_; }
    const float* tok_norm_b() const { return tok_norm_b_; }
    // The classifier head of a reranker: tanh(cls·x + cls_b), then cls_out·h + cls_out_b
    // when cls_out is present. n_cls_out = 0 when the model has no head.
    bool has_classifier() const { return cls_.data != nullptr; }
    int64_t n_cls_out() const { return cls_out_.data ? cls_out_.n_rows : cls_.data ? cls_.n_rows : 0; }
    const WeightView& cls() const { return cls_; }
    const float* cls_b() const { return cls_b_; }
    const WeightView& cls_out() const { return cls_out_; }
    const float* cls_out_b() const { return cls_out_b_; }

   private:
    void pack(WeightView& w);
    int64_t vector_length(const std::string& role) const;
    void check_vector(const std::string& role, int64_t layer, int64_t n);
    void finalize_decoder();
    void finalize_encoder();

    ModelParams p_;
    ArchTraits t_;
    WeightView tok_embd_{}, output_{};
    const float* output_norm_ = nullptr;
    WeightView pos_embd_{}, type_embd_{}, cls_{}, cls_out_{};
    const float *tok_norm_ = nullptr, *tok_norm_b_ = nullptr, *cls_b_ = nullptr, *cls_out_b_ = nullptr;
    std::vector<LayerWeights> layers_;
    std::vector<std::vector<uint8_t>> packed_;  // owned packed copies
    std::map<std::string, int64_t> deferred_;   // lengths of vectors that follow a matrix, checked by finalize
    bool finalized_ = false;
};

}  // namespace pyllama
