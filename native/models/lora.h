// A LoRA adapter (a GGUF file with general.type = adapter): for some weight
// matrices W (n_out, n_in) of a decoder, a low-rank pair
//
//   A (r, n_in)    GGUF "<weight>.lora_a", ggml shape [n_in, r]
//   B (n_out, r)   GGUF "<weight>.lora_b", ggml shape [r, n_out]
//
// so that at scale s the layer computes, as llama.cpp does,
//
//   y = W x + s' · B (A x),    s' = s · alpha / r   (s' = s when alpha is 0)
//
// A and B are F32 or F16 (any type the matmul kernels take as weights works).
// Weights are borrowed: whoever builds an adapter keeps the mapping alive.
// Which adapters apply to which sequence, at which scale, is the Context's
// business (LoraSet): a batch may mix sequences with different adapters.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "../kernels/matmul.h"
#include "../kv_cache.h"
#include "model.h"

namespace pyllama {

// The decoder matrices an adapter may adapt (the output projection is per model).
enum class LoraRole { Wq, Wk, Wv, Wo, Gate, Up, Down, Count };

// One adapted matrix: A (r, n_in) and B (n_out, r); factor = alpha / r, or 1.
struct LoraPair {
    WeightView a{}, b{};
    float factor = 1.0f;
    bool present() const { return a.data && b.data; }
};

class LoraAdapter {
   public:
    LoraAdapter(int64_t n_layer, float alpha);

    // role: wq, wk, wv, wo, gate, up, down (per layer) or output (layer ignored);
    // half: 'a' or 'b'. A matrix of rows x cols in `type`.
    void set_tensor(const std::string& role, int64_t layer, char half, const void* data, GgmlType type,
                    int64_t n_rows, int64_t n_cols);
    // Every pair whole, each A/B shape matching the model's weight. Throws
    // std::invalid_argument naming the first problem; afterwards read-only.
    void finalize(const Model& model);

    // nullptr when this adapter leaves the matrix alone.
    const LoraPair* find(int64_t layer, LoraRole role) const {
        const LoraPair& p = layers_[layer][(int)role];
        return p.present() ? &p : nullptr;
    }
    const LoraPair* output() const { return output_.present() ? &output_ : nullptr; }
    float alpha() const { return alpha_; }
    // The model finalize() checked the shapes against (nullptr before).
    const Model* model() const { return model_; }
    int64_t n_pairs() const;

   private:
    LoraPair* slot(const std::string& role, int64_t layer);

    float alpha_;
    std::vector<std::array<LoraPair, (int)LoraRole::Count>> layers_;
    LoraPair output_;
    const Model* model_ = nullptr;
};

// The adapters attached to a context and, per adapter and sequence, the scale
// it applies with (0: not at all). A token's scale is its first sequence's.
struct LoraSet {
    std::vector<const LoraAdapter*> adapters;
    std::vector<std::array<float, kMaxSeq>> scales;  // (n_adapters, kMaxSeq)
    bool empty() const { return adapters.empty(); }
};

}  // namespace pyllama
