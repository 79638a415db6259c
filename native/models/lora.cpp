#include "lora.h"

#include <stdexcept>

namespace pyllama {

namespace {

const char* const kRoleNames[] = {"wq", "wk", "wv", "wo", "gate", "up", "down"};

std::string shape_str(int64_t r, int64_t c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }

// The model's matrix a role names (what the pair adapts).
const WeightView& base_weight(const Model& m, int64_t layer, int role) {
    const LayerWeights& L = m.layer(layer);
    const WeightView* w[] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down};
    return *w[role];
}

void check_pair(const LoraPair& p, const WeightView& w, const std::string& name) {
    if (!p.a.data || !p.b.data)
        throw std::invalid_argument("LoRA tensor " + name + (p.a.data ? ".lora_b" : ".lora_a") + " is missing");
    if (!w.data) throw std::invalid_argument("LoRA tensor " + name + " adapts a matrix the model does not have");
    // A (r, n_in), B (n_out, r) for W (n_out, n_in)
    if (p.a.n_cols != w.n_cols || p.b.n_rows != w.n_rows)
        throw std::invalid_argument("LoRA tensor " + name + " has incorrect shape: lora_a " +
                                    shape_str(p.a.n_rows, p.a.n_cols) + ", lora_b " +
                                    shape_str(p.b.n_rows, p.b.n_cols) + " for a weight of " +
                                    shape_str(w.n_rows, w.n_cols) + " (maybe LoRA A/B are transposed)");
    if (p.a.n_rows != p.b.n_cols || p.a.n_rows <= 0)
        throw std::invalid_argument("LoRA tensor " + name + ": the rank of lora_a (" + std::to_string(p.a.n_rows) +
                                    ") differs from lora_b's (" + std::to_string(p.b.n_cols) + ")");
}

}  // namespace

LoraAdapter::LoraAdapter(int64_t n_layer, float alpha) : alpha_(alpha), layers_(n_layer) {
    if (n_layer <= 0) throw std::invalid_argument("a LoRA adapter needs the model's layer count");
}

LoraPair* LoraAdapter::slot(const std::string& role, int64_t layer) {
    if (role == "output") return &output_;
    for (int r = 0; r < (int)LoraRole::Count; ++r)
        if (role == kRoleNames[r]) {
            if (layer < 0 || layer >= (int64_t)layers_.size())
                throw std::invalid_argument("LoRA tensor " + role + ": layer " + std::to_string(layer) +
                                            " is out of range");
            return &layers_[layer][r];
        }
    throw std::invalid_argument("LoRA adapters cannot adapt tensor role '" + role + "'");
}

void LoraAdapter::set_tensor(const std::string& role, int64_t layer, char half, const void* data, GgmlType type,
                             int64_t n_rows, int64_t n_cols) {
    if (model_) throw std::invalid_argument("the LoRA adapter is already finalized");
    if (half != 'a' && half != 'b') throw std::invalid_argument("a LoRA tensor is lora_a or lora_b");
    const TypeTraits* tr = type_traits((uint32_t)type);
    if (!tr || !kernels().vec_dot[(int)type] || n_cols % tr->block_size)
        throw std::invalid_argument("LoRA tensor " + role + " has a type the kernels do not support");
    if (n_rows <= 0 || n_cols <= 0) throw std::invalid_argument("LoRA tensor " + role + " is empty");
    LoraPair* p = slot(role, layer);
    WeightView& w = half == 'a' ? p->a : p->b;
    w = WeightView{data, type, n_rows, n_cols, row_size(type, n_cols)};
}

void LoraAdapter::finalize(const Model& model) {
    const ModelParams& mp = model.params();
    if (model_) throw std::invalid_argument("the LoRA adapter is already finalized");
    if (model.is_encoder()) throw std::invalid_argument("LoRA adapters apply to decoders only");
    if ((int64_t)layers_.size() != mp.n_layer)
        throw std::invalid_argument("the LoRA adapter was made for " + std::to_string(layers_.size()) +
                                    " layers, the model has " + std::to_string(mp.n_layer));
    for (int64_t il = 0; il < mp.n_layer; ++il)
        for (int r = 0; r < (int)LoraRole::Count; ++r) {
            LoraPair& p = layers_[il][r];
            if (!p.a.data && !p.b.data) continue;
            check_pair(p, base_weight(model, il, r), "blk." + std::to_string(il) + "." + kRoleNames[r]);
            p.factor = alpha_ != 0.0f ? alpha_ / (float)p.a.n_rows : 1.0f;
        }
    if (output_.a.data || output_.b.data) {
        check_pair(output_, model.output(), "output");
        output_.factor = alpha_ != 0.0f ? alpha_ / (float)output_.a.n_rows : 1.0f;
    }
    model_ = &model;
}

int64_t LoraAdapter::n_pairs() const {
    int64_t n = output_.present();
    for (const auto& l : layers_)
        for (const LoraPair& p : l) n += p.present();
    return n;
}

}  // namespace pyllama
