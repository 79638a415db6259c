#include "context.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <string>

#include "../kernels/attention.h"
#include "../kernels/ops.h"

namespace pyllama {

namespace {

constexpr double kDefragThreshold = 0.5;

void add_bias(float* y, const float* b, int64_t rows, int64_t n) {
    if (!b) return;
    for (int64_t r = 0; r < rows; ++r) add(y + r * n, b, y + r * n, n);
}

}  // namespace

Context::Context(const Model& model, const ContextParams& cp)
    : m_(model),
      cp_(cp),
      pool_(cp.n_threads > 0 ? cp.n_threads : (int)std::max(1u, std::thread::hardware_concurrency())),
      kv_(cp.n_ctx,
          [&] {
              std::vector<KvLayerSpec> specs;
              const ModelParams& p = model.params();
              for (int64_t il = 0; il < p.n_layer; ++il) {
                  const bool swa = model.is_swa(il);
                  specs.push_back(KvLayerSpec{p.n_head_kv, p.head_dim_k, p.head_dim_v, p.n_rot,
                                              swa ? p.rope_base_swa : p.rope_base,
                                              swa ? p.rope_scale_swa : p.rope_scale, model.traits().rope_neox,
                                              swa ? std::vector<float>{} : p.rope_freq_factors});
              }
              return specs;
          }(),
          cp.type_k, cp.type_v) {
    if (cp_.n_ubatch <= 0) throw std::invalid_argument("n_ubatch must be positive");
}

void Context::decode(const Batch& b, float* out) {
    const ModelParams& p = m_.params();
    if (b.n_tokens <= 0) throw std::invalid_argument("the batch is empty");
    for (int64_t i = 0; i < b.n_tokens; ++i) {
        if (b.token[i] < 0 || b.token[i] >= p.n_vocab)
            throw std::invalid_argument("token id " + std::to_string(b.token[i]) + " is out of range [0, " +
                                        std::to_string(p.n_vocab) + ")");
        if (b.pos[i] < 0) throw std::invalid_argument("token positions must be >= 0");
        if (!b.seqs[i]) throw std::invalid_argument("every token needs at least one sequence id");
    }
    if (b.n_tokens > kv_.size() - kv_.n_used())
        throw ContextFull("the KV cache has " + std::to_string(kv_.size() - kv_.n_used()) + " free cells of " +
                          std::to_string(kv_.size()) + ", the batch needs " + std::to_string(b.n_tokens));
    // Where cells sit never changes a result (attention follows positions), so
    // compacting is only about locality: do it when holes dominate the used span.
    if (kv_.n_used() > 0 && kv_.fragmentation() > kDefragThreshold) kv_.defrag();
    for (int64_t i0 = 0; i0 < b.n_tokens; i0 += cp_.n_ubatch) {
        const int64_t n = std::min(cp_.n_ubatch, b.n_tokens - i0);
        decode_ubatch(b, i0, n, out);
        for (int64_t i = i0; i < i0 + n; ++i)
            if (b.logits[i]) out += p.n_vocab;
    }
}

void Context::decode_ubatch(const Batch& b, int64_t i0, int64_t n, float* out) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    const KernelTable& kt = kernels();
    cells_.resize(n);
    pos_.assign(b.pos + i0, b.pos + i0 + n);
    seq0_.resize(n);
    for (int64_t i = 0; i < n; ++i) seq0_[i] = __builtin_ctzll(b.seqs[i0 + i]);
    if (!kv_.find_slot(pos_.data(), b.seqs + i0, n, cells_.data()))
        throw ContextFull("no free KV cells for the micro-batch");

    kv_.visible(pos_.data(), seq0_.data(), n, 0, vis_);
    cs_.resize(n * p.n_rot);
    rope_angles(pos_.data(), n, p.n_rot, p.rope_base, p.rope_scale, cs_.data(),
                p.rope_freq_factors.empty() ? nullptr : p.rope_freq_factors.data());
    if (!p.swa_layers.empty()) {
        kv_.visible(pos_.data(), seq0_.data(), n, p.sliding_window, vis_swa_);
        cs_swa_.resize(n * p.n_rot);
        rope_angles(pos_.data(), n, p.n_rot, p.rope_base_swa, p.rope_scale_swa, cs_swa_.data());
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

    get_rows(m_.tok_embd(), b.token + i0, n, x_.data(), kt);  // (n, n_embd)
    if (t.embd_scale != 1.0f) scale(x_.data(), t.embd_scale, x_.data(), n * p.n_embd);

    for (int64_t il = 0; il < p.n_layer; ++il) layer(il, n);

    // outputs: final norm and the vocabulary projection of the wanted rows only
    int64_t n_out = 0;
    for (int64_t i = 0; i < n; ++i)
        if (b.logits[i0 + i])
            std::copy(x_.begin() + i * p.n_embd, x_.begin() + (i + 1) * p.n_embd, cur_.begin() + n_out++ * p.n_embd);
    if (!n_out) return;
    rms_norm(cur_.data(), m_.output_norm(), cur_.data(), n_out, p.n_embd, p.norm_eps);
    matmul(m_.output(), cur_.data(), n_out, p.n_embd, out, p.n_vocab, pool_, kt);
    if (p.final_logit_softcap > 0.0f) {
        const float c = p.final_logit_softcap;
        for (int64_t i = 0; i < n_out * p.n_vocab; ++i) out[i] = c * std::tanh(out[i] / c);
    }
}

void Context::layer(int64_t il, int64_t n) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    const LayerWeights& L = m_.layer(il);
    const KernelTable& kt = kernels();
    const bool swa = m_.is_swa(il);
    const int64_t E = p.n_embd, hk = p.head_dim_k, hv = p.head_dim_v;
    const int64_t nq = p.n_head * hk, nk = p.n_head_kv * hk, nv = p.n_head_kv * hv;
    float *x = x_.data(), *cur = cur_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();
    float *attn = attn_.data(), *o = o_.data(), *g = gate_.data(), *u = up_.data();

    // attention block
    rms_norm(x, L.attn_norm, cur, n, E, p.norm_eps);                  // (n, E)
    matmul(L.wq, cur, n, E, q, nq, pool_, kt);                        // (n, n_head, hk)
    matmul(L.wk, cur, n, E, k, nk, pool_, kt);                        // (n, n_head_kv, hk)
    matmul(L.wv, cur, n, E, v, nv, pool_, kt);                        // (n, n_head_kv, hv)
    add_bias(q, L.bq, n, nq);
    add_bias(k, L.bk, n, nk);
    add_bias(v, L.bv, n, nv);
    if (L.q_norm) rms_norm(q, L.q_norm, q, n * p.n_head, hk, p.norm_eps);
    if (L.k_norm) rms_norm(k, L.k_norm, k, n * p.n_head_kv, hk, p.norm_eps);
    const float* cs = swa ? cs_swa_.data() : cs_.data();
    rope_apply(q, cs, n, p.n_head, hk, p.n_rot, t.rope_neox);
    rope_apply(k, cs, n, p.n_head_kv, hk, p.n_rot, t.rope_neox);
    if (t.q_scale != 1.0f) scale(q, t.q_scale, q, n * nq);

    // store this micro-batch's K and V in its cells
    const KvView view = kv_.view(il);
    const QuantizeFn to_k = kt.quantize[(int)view.type_k], to_v = kt.quantize[(int)view.type_v];
    for (int64_t i = 0; i < n; ++i) {
        uint8_t* kc = kv_.k_cell(il, cells_[i]);
        uint8_t* vc = kv_.v_cell(il, cells_[i]);
        for (int64_t h = 0; h < p.n_head_kv; ++h) {
            to_k(k + i * nk + h * hk, kc + h * view.k_head_bytes, hk);
            to_v(v + i * nv + h * hv, vc + h * view.v_head_bytes, hv);
        }
    }

    const VisibleCells& vis = swa ? vis_swa_ : vis_;
    AttentionArgs a{};
    a.q = q;
    a.kv = view;
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

    matmul(L.wo, attn, n, p.n_head * hv, o, E, pool_, kt);            // (n, E)
    add_bias(o, L.bo, n, E);
    if (t.post_norms) rms_norm(o, L.post_attn_norm, o, n, E, p.norm_eps);
    add(x, o, x, n * E);

    // feed-forward block
    rms_norm(x, L.ffn_norm, cur, n, E, p.norm_eps);
    matmul(L.gate, cur, n, E, g, p.n_ff, pool_, kt);                  // (n, n_ff)
    matmul(L.up, cur, n, E, u, p.n_ff, pool_, kt);                    // (n, n_ff)
    if (t.act == FfnAct::Geglu)
        geglu_ggml(g, u, g, n * p.n_ff);
    else
        swiglu(g, u, g, n * p.n_ff);
    matmul(L.down, g, n, p.n_ff, o, E, pool_, kt);                    // (n, E)
    if (t.post_norms) rms_norm(o, L.post_ffw_norm, o, n, E, p.norm_eps);
    add(x, o, x, n * E);
}

}  // namespace pyllama
