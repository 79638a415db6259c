// The BERT family of encoders (non-causal, no KV cache, hidden states out):
//
//   x = LayerNorm(embd[token] + token_types[0] [+ position_embd[pos]])
//   per layer:  h = LayerNorm(x + Wo · attn(Wq·x + bq, Wk·x + bk, Wv·x + bv))   (attn_output_norm)
//               x = LayerNorm(h + FFN(h))                                       (layer_output_norm)
//
//   bert          absolute position embeddings; FFN = Wdown · gelu(Wup·h + bup) + bdown
//   nomic-bert    fused QKV, NEOX RoPE on Q and K; FFN = Wdown · (silu(Wgate·h) * Wup·h), no biases
//   jina-bert-v2  ALiBi (slopes from a max bias of 8); optional LayerNorm of the whole Q and K
//                 rows; an optional second norm after attention; FFN = gelu(Wgate·h) * (Wup·h + bup),
//                 or GEGLU over a fused up of 2 n_ff rows (gate first), or plain GELU
//
// As llama.cpp's graph for them: token type 0 for every token, GELU through
// ggml's F16 table, attention scores scaled by 1/sqrt(head_dim).
#include <cmath>
#include <stdexcept>
#include <string>

#include "model.h"

namespace pyllama {

namespace {

std::string shape_str(int64_t r, int64_t c) { return "(" + std::to_string(r) + ", " + std::to_string(c) + ")"; }

void need_shape(const WeightView& w, const std::string& name, int64_t rows, int64_t cols) {
    if (!w.data) throw std::invalid_argument("missing tensor " + name);
    if (w.n_rows != rows || w.n_cols != cols)
        throw std::invalid_argument("tensor " + name + " has shape " + shape_str(w.n_rows, w.n_cols) +
                                    ", expected " + shape_str(rows, cols));
}

void need_norm(const float* w, const float* b, const std::string& name) {
    if (!w) throw std::invalid_argument("missing tensor " + name + ".weight");
    if (!b) throw std::invalid_argument("missing tensor " + name + ".bias");
}

}  // namespace

ArchTraits bert_traits(const ModelParams& p, const ArchInfo& info) {
    ArchTraits t{};
    t.info = info;
    const std::string name = info.name;
    t.act = name == "nomic-bert" ? FfnAct::Swiglu : name == "jina-bert-v2" ? FfnAct::Geglu : FfnAct::Gelu;
    t.embd_scale = 1.0f;
    t.q_scale = 1.0f;
    t.kq_scale = 1.0f / std::sqrt((float)p.head_dim_k);
    t.ffn_bias = t.act != FfnAct::Swiglu;  // llama.cpp's nomic-bert graph adds no FFN bias
    return t;
}

void Model::finalize_encoder() {
    const ModelParams& p = p_;
    const int64_t E = p.n_embd, nq = p.n_head * p.head_dim_k, nk = p.n_head_kv * p.head_dim_k;
    const int64_t nv = p.n_head_kv * p.head_dim_v;
    auto deferred = [&](const std::string& name, int64_t want) {
        auto it = deferred_.find(name);
        if (it != deferred_.end() && it->second != want)
            throw std::invalid_argument("tensor " + name + " has " + std::to_string(it->second) +
                                        " elements, expected " + std::to_string(want));
    };
    need_shape(tok_embd_, "token_embd", p.n_vocab, E);
    need_norm(tok_norm_, tok_norm_b_, "token_embd_norm");
    if (t_.info.positions == Positions::Absolute) {
        if (!pos_embd_.data) throw std::invalid_argument("missing tensor position_embd");
        need_shape(pos_embd_, "position_embd", pos_embd_.n_rows, E);
    }
    if (type_embd_.data) need_shape(type_embd_, "token_types", type_embd_.n_rows, E);
    for (int64_t i = 0; i < p.n_layer; ++i) {
        LayerWeights& L = layers_[i];
        const std::string b = "blk." + std::to_string(i) + ".";
        if (L.wqkv.data) {
            need_shape(L.wqkv, b + "attn_qkv", nq + nk + nv, E);
            deferred(b + "bqkv", nq + nk + nv);
        } else {
            need_shape(L.wq, b + "attn_q", nq, E);
            need_shape(L.wk, b + "attn_k", nk, E);
            need_shape(L.wv, b + "attn_v", nv, E);
        }
        need_shape(L.wo, b + "attn_output", E, p.n_head * p.head_dim_v);
        need_norm(L.attn_out_norm, L.attn_out_norm_b, b + "attn_output_norm");
        need_norm(L.layer_out_norm, L.layer_out_norm_b, b + "layer_output_norm");
        if (t_.act == FfnAct::Gelu) L.gate = WeightView{};  // BERT's graph has no gate
        if (t_.act == FfnAct::Swiglu || L.gate.data) {
            need_shape(L.gate, b + "ffn_gate", p.n_ff, E);
            need_shape(L.up, b + "ffn_up", p.n_ff, E);
        } else {
            // jina-bert-v2 may fuse gate and up in one matrix of 2 n_ff rows
            const bool fused = t_.act == FfnAct::Geglu && L.up.data && L.up.n_rows == 2 * p.n_ff;
            need_shape(L.up, b + "ffn_up", fused ? 2 * p.n_ff : p.n_ff, E);
        }
        deferred(b + "up_b", L.up.n_rows);
        need_shape(L.down, b + "ffn_down", E, p.n_ff);
    }
    if (cls_.data) {
        need_shape(cls_, "cls", cls_.n_rows, E);
        if (!cls_b_) throw std::invalid_argument("missing tensor cls.bias");
        deferred("cls_b", cls_.n_rows);
        if (cls_out_.data) {
            need_shape(cls_out_, "cls.output", cls_out_.n_rows, cls_.n_rows);
            if (!cls_out_b_) throw std::invalid_argument("missing tensor cls.output.bias");
            deferred("cls_out_b", cls_out_.n_rows);
        }
    } else if (cls_out_.data) {
        throw std::invalid_argument("missing tensor cls (the model has cls.output)");
    }
}

}  // namespace pyllama
