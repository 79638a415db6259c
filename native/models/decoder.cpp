#include "decoder.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "../kernels/attention.h"
#include "../kernels/ops.h"

namespace pyllama {

namespace {

void add_bias(float* y, const float* b, int64_t rows, int64_t n) {
    if (!b) return;
    for (int64_t r = 0; r < rows; ++r) add(y + r * n, b, y + r * n, n);
}

}  // namespace

void Decoder::forward(const Batch& b, int64_t i0, int64_t n, const int32_t* cells, float* out) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    prepare(b, i0, n, cells);
    get_rows(m_.tok_embd(), b.token + i0, n, x_.data(), kernels());  // (n, n_embd)
    if (t.embd_scale != 1.0f) scale(x_.data(), t.embd_scale, x_.data(), n * p.n_embd);
    for (int64_t il = 0; il < p.n_layer; ++il) {
        attention_block(il, n);
        feed_forward_block(il, n);
        if (!cvec_on_.empty() && cvec_on_[il])
            for (int64_t t = 0; t < n; ++t) add(x_.data() + t * p.n_embd, cvec_.data() + il * p.n_embd,
                                                x_.data() + t * p.n_embd, p.n_embd);
    }
    output_logits(b, i0, n, out);
}

void Decoder::set_control_vector(std::vector<float> v) {
    const ModelParams& p = m_.params();
    if (v.empty()) {
        cvec_.clear();
        cvec_on_.clear();
        return;
    }
    if ((int64_t)v.size() != p.n_layer * p.n_embd)
        throw std::invalid_argument("a control vector has n_layer x n_embd = " + std::to_string(p.n_layer) + " x " +
                                    std::to_string(p.n_embd) + " floats");
    cvec_ = std::move(v);
    cvec_on_.assign(p.n_layer, 0);
    for (int64_t il = 0; il < p.n_layer; ++il)
        for (int64_t i = 0; i < p.n_embd; ++i)
            if (cvec_[il * p.n_embd + i] != 0.0f) {
                cvec_on_[il] = 1;
                break;
            }
}

// Positions, visible cells and RoPE angles of the micro-batch; scratch sizes.
void Decoder::prepare(const Batch& b, int64_t i0, int64_t n, const int32_t* cells) {
    const ModelParams& p = m_.params();
    cells_ = cells;
    pos_.assign(b.pos + i0, b.pos + i0 + n);
    seq0_.resize(n);
    for (int64_t i = 0; i < n; ++i) seq0_[i] = __builtin_ctzll(b.seqs[i0 + i]);

    kv_.visible(pos_.data(), seq0_.data(), n, 0, vis_);
    RopeParams rp;  // global layers; sliding-window ones have their own base and scale
    rp.n_rot = p.n_rot;
    rp.freq_base = p.rope_base;
    rp.freq_scale = p.rope_scale;
    rp.ext_factor = p.rope_ext_factor;
    rp.attn_factor = p.rope_attn_factor;
    rp.beta_fast = p.rope_beta_fast;
    rp.beta_slow = p.rope_beta_slow;
    rp.n_ctx_orig = p.rope_n_ctx_orig;
    rp.freq_factors = p.rope_freq_factors.empty() ? nullptr : p.rope_freq_factors.data();
    cs_.resize(n * p.n_rot);
    rope_angles_ext(pos_.data(), n, rp, cs_.data());
    if (!p.swa_layers.empty()) {
        kv_.visible(pos_.data(), seq0_.data(), n, p.sliding_window, vis_swa_);
        cs_swa_.resize(n * p.n_rot);
        rp.freq_base = p.rope_base_swa;
        rp.freq_scale = p.rope_scale_swa;
        rp.freq_factors = nullptr;
        rope_angles_ext(pos_.data(), n, rp, cs_swa_.data());
    }

    const int64_t nq = p.n_head * p.head_dim_k, nk = p.n_head_kv * p.head_dim_k, nv = p.n_head_kv * p.head_dim_v;
    const int64_t width = std::max({p.n_embd, nq, p.n_head * p.head_dim_v});
    x_.resize(n * p.n_embd);
    cur_.resize(n * width);
    q_.resize(n * nq);
    k_.resize(n * nk);
    v_.resize(n * nv);
    attn_.resize(n * p.n_head * p.head_dim_v);
    o_.resize(n * p.n_embd);
    gate_.resize(n * p.n_ff);
    up_.resize(n * p.n_ff);
}

void Decoder::attention_block(int64_t il, int64_t n) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    const LayerWeights& L = m_.layer(il);
    const KernelTable& kt = kernels();
    const bool swa = m_.is_swa(il);
    const int64_t E = p.n_embd, hk = p.head_dim_k, hv = p.head_dim_v;
    const int64_t nq = p.n_head * hk, nk = p.n_head_kv * hk, nv = p.n_head_kv * hv;
    float *x = x_.data(), *cur = cur_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();
    float *attn = attn_.data(), *o = o_.data();

    rms_norm(x, L.attn_norm, cur, n, E, p.norm_eps);                  // (n, E)
    const int32_t* seq = seq0_.data();
    mm(L.wq, il, (int)LoraRole::Wq, cur, n, E, q, nq, seq);           // (n, n_head, hk)
    mm(L.wk, il, (int)LoraRole::Wk, cur, n, E, k, nk, seq);           // (n, n_head_kv, hk)
    mm(L.wv, il, (int)LoraRole::Wv, cur, n, E, v, nv, seq);           // (n, n_head_kv, hv)
    add_bias(q, L.bq, n, nq);
    add_bias(k, L.bk, n, nk);
    add_bias(v, L.bv, n, nv);
    if (L.q_norm) rms_norm(q, L.q_norm, q, n * p.n_head, hk, p.norm_eps);
    if (L.k_norm) rms_norm(k, L.k_norm, k, n * p.n_head_kv, hk, p.norm_eps);
    const float* cs = swa ? cs_swa_.data() : cs_.data();
    rope_apply(q, cs, n, p.n_head, hk, p.n_rot, t.info.rope_neox);
    rope_apply(k, cs, n, p.n_head_kv, hk, p.n_rot, t.info.rope_neox);
    if (t.q_scale != 1.0f) scale(q, t.q_scale, q, n * nq);
    store_kv(il, n, k, v);

    const VisibleCells& vis = swa ? vis_swa_ : vis_;
    AttentionArgs a{};
    a.q = q;
    a.kv = kv_.view(il);
    a.cells = vis.cells.data();
    a.begin = vis.begin.data();
    a.end = vis.end.data();
    a.out = attn;
    a.n_tokens = n;
    a.n_head = p.n_head;
    a.n_head_kv = p.n_head_kv;
    a.head_dim_k = hk;
    a.head_dim_v = hv;
    a.scale = t.kq_scale;
    a.softcap = p.attn_logit_softcap;
    attention(a, pool_, kt);                                          // (n, n_head, hv)

    mm(L.wo, il, (int)LoraRole::Wo, attn, n, p.n_head * hv, o, E, seq);  // (n, E)
    add_bias(o, L.bo, n, E);
    if (t.info.post_norms) rms_norm(o, L.post_attn_norm, o, n, E, p.norm_eps);
    add(x, o, x, n * E);
}

// This micro-batch's K (n, n_head_kv, hk) and V (n, n_head_kv, hv), each token's into its cell.
void Decoder::store_kv(int64_t il, int64_t n, const float* k, const float* v) {
    const ModelParams& p = m_.params();
    const int64_t hk = p.head_dim_k, hv = p.head_dim_v, nk = p.n_head_kv * hk, nv = p.n_head_kv * hv;
    const KvView view = kv_.view(il);
    const KernelTable& kt = kernels();
    const QuantizeFn to_k = kt.quantize[(int)view.type_k], to_v = kt.quantize[(int)view.type_v];
    for (int64_t i = 0; i < n; ++i) {
        uint8_t* kc = kv_.k_cell(il, cells_[i]);
        uint8_t* vc = kv_.v_cell(il, cells_[i]);
        for (int64_t h = 0; h < p.n_head_kv; ++h) {
            to_k(k + i * nk + h * hk, kc + h * view.k_head_bytes, hk);
            to_v(v + i * nv + h * hv, vc + h * view.v_head_bytes, hv);
        }
    }
}

void Decoder::feed_forward_block(int64_t il, int64_t n) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    const LayerWeights& L = m_.layer(il);
    const int64_t E = p.n_embd;
    float *x = x_.data(), *cur = cur_.data(), *o = o_.data(), *g = gate_.data(), *u = up_.data();

    rms_norm(x, L.ffn_norm, cur, n, E, p.norm_eps);
    const int32_t* seq = seq0_.data();
    mm(L.gate, il, (int)LoraRole::Gate, cur, n, E, g, p.n_ff, seq);   // (n, n_ff)
    mm(L.up, il, (int)LoraRole::Up, cur, n, E, u, p.n_ff, seq);       // (n, n_ff)
    if (t.act == FfnAct::Geglu)
        geglu_ggml(g, u, g, n * p.n_ff);
    else
        swiglu(g, u, g, n * p.n_ff);
    mm(L.down, il, (int)LoraRole::Down, g, n, p.n_ff, o, E, seq);     // (n, E)
    if (t.info.post_norms) rms_norm(o, L.post_ffw_norm, o, n, E, p.norm_eps);
    add(x, o, x, n * E);
}

// Final norm and the vocabulary projection of the flagged rows only (or the normed rows themselves).
void Decoder::output_logits(const Batch& b, int64_t i0, int64_t n, float* out) {
    const ModelParams& p = m_.params();
    int64_t n_out = 0;
    out_seq_.resize(n);
    for (int64_t i = 0; i < n; ++i)
        if (b.logits[i0 + i]) {
            out_seq_[n_out] = seq0_[i];
            std::copy(x_.begin() + i * p.n_embd, x_.begin() + (i + 1) * p.n_embd, cur_.begin() + n_out++ * p.n_embd);
        }
    if (!n_out) return;
    rms_norm(cur_.data(), m_.output_norm(), cur_.data(), n_out, p.n_embd, p.norm_eps);
    if (b.embd) {
        std::copy(cur_.begin(), cur_.begin() + n_out * p.n_embd, out);  // (n_out, n_embd)
        return;
    }
    mm(m_.output(), -1, -1, cur_.data(), n_out, p.n_embd, out, p.n_vocab, out_seq_.data());  // (n_out, n_vocab)
    if (p.final_logit_softcap > 0.0f) {
        const float c = p.final_logit_softcap;
        for (int64_t i = 0; i < n_out * p.n_vocab; ++i) out[i] = c * std::tanh(out[i] / c);
    }
}

void Decoder::mm(const WeightView& w, int64_t il, int role, const float* x, int64_t n, int64_t n_in, float* y,
                 int64_t n_out, const int32_t* row_seq) {
    const KernelTable& kt = kernels();
    matmul(w, x, n, n_in, y, n_out, pool_, kt);
    // Each adapter in attachment order; a row's delta is computed from that row
    // alone (matmul never mixes rows), so a sequence's result does not depend
    // on which adapters its batch neighbours use.
    for (size_t a = 0; a < lora_.adapters.size(); ++a) {
        const LoraAdapter* ad = lora_.adapters[a];
        const LoraPair* pr = role < 0 ? ad->output() : ad->find(il, (LoraRole)role);
        if (!pr) continue;
        lora_s_.resize(n);
        bool any = false;
        for (int64_t i = 0; i < n; ++i) {
            lora_s_[i] = lora_.scales[a][row_seq[i]] * pr->factor;
            any |= lora_s_[i] != 0.0f;
        }
        if (!any) continue;
        const int64_t r = pr->a.n_rows;
        lora_t_.resize(n * r);
        lora_u_.resize(n * n_out);
        matmul(pr->a, x, n, n_in, lora_t_.data(), r, pool_, kt);                  // (n, r)
        matmul(pr->b, lora_t_.data(), n, r, lora_u_.data(), n_out, pool_, kt);    // (n, n_out)
        for (int64_t i = 0; i < n; ++i) {
            const float s = lora_s_[i];
            if (s == 0.0f) continue;
            float* yr = y + i * n_out;
            const float* ur = lora_u_.data() + i * n_out;
            for (int64_t j = 0; j < n_out; ++j) yr[j] += s * ur[j];
        }
    }
}

}  // namespace pyllama
