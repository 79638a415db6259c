#include "model.h"

#include <stdexcept>

#include "../kernels/repack.h"

namespace pyllama {

namespace {

std::string shape_str(int64_t r, int64_t c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }

void need_matrix(const WeightView& w, const std::string& name, int64_t rows, int64_t cols) {
    if (!w.data) throw std::invalid_argument("missing tensor " + name);
    if (w.n_rows != rows || w.n_cols != cols)
        throw std::invalid_argument("tensor " + name + " has shape " + shape_str(w.n_rows, w.n_cols) +
                                    ", expected " + shape_str(rows, cols));
}

}  // namespace

ArchTraits arch_traits(const ModelParams& p) {
    const ArchInfo* info = find_architecture(p.arch);
    if (info && (info->decoder || info->encoder)) {
        switch (info->family) {
            case Family::Llama: return llama_traits(p, *info);
            case Family::Gemma3: return gemma3_traits(p, *info);
            case Family::Bert: return bert_traits(p, *info);
        }
    }
    throw std::invalid_argument("unsupported model architecture '" + p.arch + "'");
}

Model::Model(ModelParams p) : p_(std::move(p)) {
    t_ = arch_traits(p_);
    if (p_.n_vocab <= 0 || p_.n_embd <= 0 || p_.n_layer <= 0 || p_.n_head <= 0 || p_.n_head_kv <= 0 ||
        p_.head_dim_k <= 0 || p_.head_dim_v <= 0 || p_.n_ff <= 0)
        throw std::invalid_argument("model dimensions must be positive");
    if (p_.n_head % p_.n_head_kv) throw std::invalid_argument("n_head must be a multiple of n_head_kv");
    if (p_.n_rot <= 0 || p_.n_rot > p_.head_dim_k || p_.n_rot % 2)
        throw std::invalid_argument("rope dimension count must be even and at most the head dimension");
    if (!p_.rope_freq_factors.empty() && (int64_t)p_.rope_freq_factors.size() != p_.n_rot / 2)
        throw std::invalid_argument("rope_freqs must have n_rot/2 entries");
    if (!(p_.rope_base > 0.0f) || !(p_.rope_scale > 0.0f) || !(p_.rope_base_swa > 0.0f) || !(p_.rope_scale_swa > 0.0f))
        throw std::invalid_argument("rope frequency base and scale must be positive");
    if (p_.rope_ext_factor != 0.0f && p_.rope_n_ctx_orig <= 0)
        throw std::invalid_argument("YaRN needs the original context size (rope_n_ctx_orig)");
    if (!p_.swa_layers.empty() && (int64_t)p_.swa_layers.size() != p_.n_layer)
        throw std::invalid_argument("swa_layers must have one entry per layer");
    layers_.resize(p_.n_layer);
}

void Model::set_tensor(const std::string& role, int64_t layer, const void* data, GgmlType type, int64_t n_rows,
                       int64_t n_cols) {
    if (finalized_) throw std::invalid_argument("model is already finalized");
    const TypeTraits* tr = type_traits((uint32_t)type);
    if (!tr || !kernels().vec_dot[(int)type])
        throw std::invalid_argument("tensor " + role + " has a type the kernels do not support");
    if (n_cols % tr->block_size)
        throw std::invalid_argument("tensor " + role + " rows are not a whole number of blocks");
    const WeightView w{data, type, n_rows, n_cols, row_size(type, n_cols)};
    auto vec = [&](const float*& dst) {
        if (type != GgmlType::F32 || n_rows != 1) throw std::invalid_argument("tensor " + role + " must be an F32 vector");
        dst = static_cast<const float*>(data);
    };
    auto mat = [&](WeightView& dst) {
        dst = w;
        pack(dst);
    };
    if (role == "tok_embd") { tok_embd_ = w; return; }
    if (role == "output") { mat(output_); return; }
    if (role == "output_norm") { vec(output_norm_); return; }
    if (role == "pos_embd") { pos_embd_ = w; return; }
    if (role == "type_embd") { type_embd_ = w; return; }
    if (role == "cls") { mat(cls_); return; }
    if (role == "cls_out") { mat(cls_out_); return; }
    const float** whole = role == "tok_norm" ? &tok_norm_ : role == "tok_norm_b" ? &tok_norm_b_
                        : role == "cls_b" ? &cls_b_ : role == "cls_out_b" ? &cls_out_b_ : nullptr;
    if (whole) {
        vec(*whole);
        check_vector(role, -1, n_cols);
        return;
    }
    if (layer < 0 || layer >= p_.n_layer) throw std::invalid_argument("layer index out of range for " + role);
    LayerWeights& L = layers_[layer];
    WeightView* m = role == "wq" ? &L.wq : role == "wk" ? &L.wk : role == "wv" ? &L.wv : role == "wo" ? &L.wo
                  : role == "wqkv" ? &L.wqkv : role == "gate" ? &L.gate : role == "up" ? &L.up
                  : role == "down" ? &L.down : nullptr;
    if (m) {
        mat(*m);
        return;
    }
    const std::pair<const char*, const float**> vectors[] = {
        {"attn_norm", &L.attn_norm}, {"bq", &L.bq}, {"bk", &L.bk}, {"bv", &L.bv}, {"bo", &L.bo},
        {"q_norm", &L.q_norm}, {"k_norm", &L.k_norm}, {"post_attn_norm", &L.post_attn_norm},
        {"ffn_norm", &L.ffn_norm}, {"post_ffw_norm", &L.post_ffw_norm}, {"bqkv", &L.bqkv},
        {"q_norm_b", &L.q_norm_b}, {"k_norm_b", &L.k_norm_b}, {"attn_out_norm", &L.attn_out_norm},
        {"attn_out_norm_b", &L.attn_out_norm_b}, {"attn_norm_2", &L.attn_norm_2},
        {"attn_norm_2_b", &L.attn_norm_2_b}, {"up_b", &L.up_b}, {"down_b", &L.down_b},
        {"layer_out_norm", &L.layer_out_norm}, {"layer_out_norm_b", &L.layer_out_norm_b},
    };
    for (const auto& [name, dst] : vectors)
        if (role == name) {
            vec(*dst);
            check_vector(role, layer, n_cols);
            return;
        }
    throw std::invalid_argument("unknown tensor role " + role);
}

// The length a vector role must have; -1 when it follows a matrix (checked by finalize).
int64_t Model::vector_length(const std::string& role) const {
    const ModelParams& p = p_;
    if (role == "bq") return p.n_head * p.head_dim_k;
    if (role == "bk") return p.n_head_kv * p.head_dim_k;
    if (role == "bv") return p.n_head_kv * p.head_dim_v;
    if (role == "q_norm" || role == "k_norm" || role == "q_norm_b" || role == "k_norm_b") {
        if (!t_.info.encoder) return p.head_dim_k;                     // per head
        return (role[0] == 'q' ? p.n_head : p.n_head_kv) * p.head_dim_k;  // the whole row
    }
    if (role == "bqkv" || role == "up_b" || role == "cls_b" || role == "cls_out_b") return -1;
    return p.n_embd;
}

void Model::check_vector(const std::string& role, int64_t layer, int64_t n) {
    const int64_t want = vector_length(role);
    const std::string name = layer >= 0 ? "blk." + std::to_string(layer) + "." + role : role;
    if (want < 0) {
        deferred_[name] = n;
        return;
    }
    if (n != want)
        throw std::invalid_argument("tensor " + role + (layer >= 0 ? " of layer " + std::to_string(layer) : "") +
                                    " has " + std::to_string(n) + " elements, expected " + std::to_string(want));
}

void Model::pack(WeightView& w) {
    const size_t n = pyllama::packed_bytes(w.type, w.n_rows, w.n_cols);
    if (!n || !kernels().vec_dot8[(int)w.type]) return;
    packed_.emplace_back(n);
    pack_rows(w.type, w.data, w.row_stride, w.n_rows, w.n_cols, packed_.back().data());
    w.packed = packed_.back().data();
}

void Model::finalize() {
    if (t_.info.encoder)
        finalize_encoder();
    else
        finalize_decoder();
    finalized_ = true;
}

void Model::finalize_decoder() {
    const ModelParams& p = p_;
    need_matrix(tok_embd_, "token_embd", p.n_vocab, p.n_embd);
    if (output_.data) need_matrix(output_, "output", p.n_vocab, p.n_embd);
    if (!output_norm_) throw std::invalid_argument("missing tensor output_norm");
    const ArchInfo& a = t_.info;
    for (int64_t i = 0; i < p.n_layer; ++i) {
        LayerWeights& L = layers_[i];
        const std::string b = "blk." + std::to_string(i) + ".";
        need_matrix(L.wq, b + "attn_q", p.n_head * p.head_dim_k, p.n_embd);
        need_matrix(L.wk, b + "attn_k", p.n_head_kv * p.head_dim_k, p.n_embd);
        need_matrix(L.wv, b + "attn_v", p.n_head_kv * p.head_dim_v, p.n_embd);
        need_matrix(L.wo, b + "attn_output", p.n_embd, p.n_head * p.head_dim_v);
        need_matrix(L.gate, b + "ffn_gate", p.n_ff, p.n_embd);
        need_matrix(L.up, b + "ffn_up", p.n_ff, p.n_embd);
        need_matrix(L.down, b + "ffn_down", p.n_embd, p.n_ff);
        if (!L.attn_norm) throw std::invalid_argument("missing tensor " + b + "attn_norm");
        if (!L.ffn_norm) throw std::invalid_argument("missing tensor " + b + "ffn_norm");
        if (a.qk_norm && (!L.q_norm || !L.k_norm))
            throw std::invalid_argument("missing tensor " + b + "attn_q_norm/attn_k_norm");
        if (a.qkv_bias && (!L.bq || !L.bk || !L.bv))
            throw std::invalid_argument("missing tensor " + b + "attn_q/k/v bias");
        if (a.post_norms && (!L.post_attn_norm || !L.post_ffw_norm))
            throw std::invalid_argument("missing tensor " + b + "post_attention_norm/post_ffw_norm");
    }
    if (!output_.data && !tok_embd_.packed) pack(tok_embd_);  // tied: the packed copy serves the output matmul, get_rows reads the plain rows
}

size_t Model::packed_bytes() const {
    size_t n = 0;
    for (const auto& b : packed_) n += b.size();
    return n;
}

}  // namespace pyllama
