#include "encoder.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "../kernels/attention.h"
#include "../kernels/ops.h"

namespace pyllama {

namespace {

constexpr float kAlibiMaxBias = 8.0f;  // llama.cpp's f_max_alibi_bias for jina-bert-v2

void add_bias(float* y, const float* b, int64_t rows, int64_t n) {
    if (!b) return;
    for (int64_t r = 0; r < rows; ++r) add(y + r * n, b, y + r * n, n);
}

// fn(r0, r1) over rows [0, rows) of n values each, split across the pool when
// there is enough work; every op inside is row-wise, so results do not depend
// on the split.
template <class Fn>
void for_rows(ThreadPool& pool, int64_t rows, int64_t n, Fn fn) {
    constexpr int64_t kMinParallel = 8192;  // values below which a fork/join costs more than it saves
    if (rows * n < kMinParallel || pool.n_threads() == 1 || rows < 2) {
        fn(int64_t{0}, rows);
        return;
    }
    pool.run([&](int ith, int nth) {
        const int64_t chunk = (rows + nth - 1) / nth;
        const int64_t r0 = std::min(rows, ith * chunk), r1 = std::min(rows, r0 + chunk);
        if (r0 < r1) fn(r0, r1);
    });
}

}  // namespace

void Encoder::forward(const Batch& b, const int64_t* idx, int64_t n, const int64_t* out_row, float* out) {
    const int64_t E = m_.params().n_embd;
    prepare(b, idx, n);
    embed_inputs(n);
    for (int64_t il = 0; il < m_.params().n_layer; ++il) {
        attention_block(il, n);
        feed_forward_block(il, n);
    }
    for (int64_t i = 0; i < n; ++i)
        if (out_row[i] >= 0) std::copy(x_.begin() + i * E, x_.begin() + (i + 1) * E, out + out_row[i] * E);
}

// Tokens, positions, who sees whom, RoPE angles; scratch sizes.
void Encoder::prepare(const Batch& b, const int64_t* idx, int64_t n) {
    const ModelParams& p = m_.params();
    const ArchInfo& a = m_.traits().info;
    tok_.resize(n);
    pos_.resize(n);
    std::vector<int32_t> seq(n);
    for (int64_t i = 0; i < n; ++i) {
        tok_[i] = b.token[idx[i]];
        pos_[i] = b.pos[idx[i]];
        seq[i] = __builtin_ctzll(b.seqs[idx[i]]);
    }
    // Each sequence's tokens in position order; every token of a sequence sees the whole run.
    cells_.resize(n);
    for (int64_t i = 0; i < n; ++i) cells_[i] = (int32_t)i;
    std::sort(cells_.begin(), cells_.end(), [&](int32_t x, int32_t y) {
        return std::tie(seq[x], pos_[x], x) < std::tie(seq[y], pos_[y], y);
    });
    begin_.resize(n);
    end_.resize(n);
    for (int64_t j0 = 0; j0 < n;) {
        int64_t j1 = j0;
        while (j1 < n && seq[cells_[j1]] == seq[cells_[j0]]) ++j1;
        for (int64_t j = j0; j < j1; ++j) {
            begin_[cells_[j]] = j0;
            end_[cells_[j]] = j1;
        }
        j0 = j1;
    }
    if (a.positions == Positions::Rope) {
        cs_.resize(n * p.n_rot);
        rope_angles(pos_.data(), n, p.n_rot, p.rope_base, p.rope_scale, cs_.data());
    }
    if (a.positions == Positions::Alibi && (int64_t)slopes_.size() != p.n_head) {
        slopes_.resize(p.n_head);
        alibi_slopes(p.n_head, kAlibiMaxBias, slopes_.data());
    }
    const int64_t nq = p.n_head * p.head_dim_k, nk = p.n_head_kv * p.head_dim_k, nv = p.n_head_kv * p.head_dim_v;
    int64_t n_up = p.n_ff;
    for (int64_t il = 0; il < p.n_layer; ++il) n_up = std::max(n_up, m_.layer(il).up.n_rows);
    x_.resize(n * p.n_embd);
    cur_.resize(n * p.n_embd);
    q_.resize(n * nq);
    k_.resize(n * nk);
    v_.resize(n * nv);
    qkv_.resize(n * (nq + nk + nv));
    attn_.resize(n * p.n_head * p.head_dim_v);
    o_.resize(n * p.n_embd);
    up_.resize(n * n_up);
    gate_.resize(n * p.n_ff);
    k16_.resize(n * row_size(GgmlType::F16, nk));
    v16_.resize(n * row_size(GgmlType::F16, nv));
}

void Encoder::embed_inputs(int64_t n) {
    const ModelParams& p = m_.params();
    const int64_t E = p.n_embd;
    const KernelTable& kt = kernels();
    const bool absolute = m_.traits().info.positions == Positions::Absolute;
    if (absolute) {
        const int64_t n_pos = m_.pos_embd().n_rows;
        for (int64_t i = 0; i < n; ++i)
            if (pos_[i] >= n_pos)
                throw std::invalid_argument("position " + std::to_string(pos_[i]) + " is beyond the model's " +
                                            std::to_string(n_pos) + " position embeddings");
    }
    float* x = x_.data();
    const float* type0 = nullptr;  // every token is of type 0 ("sentence A")
    if (m_.type_embd().data) {
        const int32_t zero = 0;
        get_rows(m_.type_embd(), &zero, 1, o_.data(), kt);
        type0 = o_.data();
    }
    for_rows(pool_, n, E, [&](int64_t r0, int64_t r1) {
        get_rows(m_.tok_embd(), tok_.data() + r0, r1 - r0, x + r0 * E, kt);  // (n, E)
        if (type0) add_bias(x + r0 * E, type0, r1 - r0, E);
        if (absolute) {
            float* pe = cur_.data() + r0 * E;
            get_rows(m_.pos_embd(), pos_.data() + r0, r1 - r0, pe, kt);
            add(pe, x + r0 * E, x + r0 * E, (r1 - r0) * E);
        }
        layer_norm(x + r0 * E, m_.tok_norm(), m_.tok_norm_b(), x + r0 * E, r1 - r0, E, p.norm_eps);
    });
}

void Encoder::attention_block(int64_t il, int64_t n) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    const LayerWeights& L = m_.layer(il);
    const KernelTable& kt = kernels();
    const int64_t E = p.n_embd, hk = p.head_dim_k, hv = p.head_dim_v;
    const int64_t nq = p.n_head * hk, nk = p.n_head_kv * hk, nv = p.n_head_kv * hv;
    float *x = x_.data(), *cur = cur_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();

    const int64_t w = nq + nk + nv;
    if (L.wqkv.data) {
        matmul(L.wqkv, x, n, E, qkv_.data(), w, pool_, kt);  // (n, nq + nk + nv)
    } else {
        matmul(L.wq, x, n, E, q, nq, pool_, kt);  // (n, n_head, hk)
        matmul(L.wk, x, n, E, k, nk, pool_, kt);  // (n, n_head_kv, hk)
        matmul(L.wv, x, n, E, v, nv, pool_, kt);  // (n, n_head_kv, hv)
    }
    const QuantizeFn to_f16 = kt.quantize[(int)GgmlType::F16];
    const size_t k16_row = row_size(GgmlType::F16, nk), v16_row = row_size(GgmlType::F16, nv);
    for_rows(pool_, n, w, [&](int64_t r0, int64_t r1) {
        const int64_t rows = r1 - r0;
        float *qr = q + r0 * nq, *kr = k + r0 * nk, *vr = v + r0 * nv;
        if (L.wqkv.data) {
            add_bias(qkv_.data() + r0 * w, L.bqkv, rows, w);
            for (int64_t i = r0; i < r1; ++i) {
                const float* r = qkv_.data() + i * w;
                std::copy(r, r + nq, q + i * nq);
                std::copy(r + nq, r + nq + nk, k + i * nk);
                std::copy(r + nq + nk, r + w, v + i * nv);
            }
        } else {
            add_bias(qr, L.bq, rows, nq);
            add_bias(kr, L.bk, rows, nk);
            add_bias(vr, L.bv, rows, nv);
        }
        if (L.q_norm) layer_norm(qr, L.q_norm, L.q_norm_b, qr, rows, nq, p.norm_eps);
        if (L.k_norm) layer_norm(kr, L.k_norm, L.k_norm_b, kr, rows, nk, p.norm_eps);
        if (t.info.positions == Positions::Rope) {
            rope_apply(qr, cs_.data() + r0 * p.n_rot, rows, p.n_head, hk, p.n_rot, t.info.rope_neox);
            rope_apply(kr, cs_.data() + r0 * p.n_rot, rows, p.n_head_kv, hk, p.n_rot, t.info.rope_neox);
        }
        to_f16(kr, k16_.data() + r0 * k16_row, rows * nk);
        to_f16(vr, v16_.data() + r0 * v16_row, rows * nv);
    });

    AttentionArgs a{};
    a.q = q;
    a.kv = KvView{k16_.data(), v16_.data(), GgmlType::F16, GgmlType::F16, row_size(GgmlType::F16, hk),
                  row_size(GgmlType::F16, hv), row_size(GgmlType::F16, nk), row_size(GgmlType::F16, nv)};
    a.cells = cells_.data();
    a.begin = begin_.data();
    a.end = end_.data();
    a.out = attn_.data();
    a.n_tokens = n;
    a.n_head = p.n_head;
    a.n_head_kv = p.n_head_kv;
    a.head_dim_k = hk;
    a.head_dim_v = hv;
    a.scale = t.kq_scale;
    a.softcap = 0.0f;
    if (t.info.positions == Positions::Alibi) {
        a.alibi = slopes_.data();
        a.q_pos = pos_.data();
        a.kv_pos = pos_.data();
    }
    attention(a, pool_, kt);                                              // (n, n_head, hv)

    float* o = o_.data();
    matmul(L.wo, attn_.data(), n, p.n_head * hv, o, E, pool_, kt);       // (n, E)
    for_rows(pool_, n, E, [&](int64_t r0, int64_t r1) {
        const int64_t rows = r1 - r0, at = r0 * E;
        add_bias(o + at, L.bo, rows, E);
        add(o + at, x + at, cur + at, rows * E);                          // re-add the layer input
        layer_norm(cur + at, L.attn_out_norm, L.attn_out_norm_b, cur + at, rows, E, p.norm_eps);
        if (L.attn_norm_2) {
            add(cur + at, x + at, cur + at, rows * E);
            layer_norm(cur + at, L.attn_norm_2, L.attn_norm_2_b, cur + at, rows, E, p.norm_eps);
        }
    });
    x_.swap(cur_);                                                        // x = the FFN's input
}

void Encoder::feed_forward_block(int64_t il, int64_t n) {
    const ModelParams& p = m_.params();
    const ArchTraits& t = m_.traits();
    const LayerWeights& L = m_.layer(il);
    const KernelTable& kt = kernels();
    const int64_t E = p.n_embd, F = p.n_ff;
    float *x = x_.data(), *cur = cur_.data(), *o = o_.data(), *u = up_.data(), *g = gate_.data();
    const float* up_b = t.ffn_bias ? L.up_b : nullptr;

    const float* h;  // (n, F) what goes into the down projection
    if (L.gate.data) {
        matmul(L.gate, x, n, E, g, F, pool_, kt);                         // (n, F)
        matmul(L.up, x, n, E, u, F, pool_, kt);                           // (n, F)
        for_rows(pool_, n, F, [&](int64_t r0, int64_t r1) {
            add_bias(u + r0 * F, up_b, r1 - r0, F);
            if (t.act == FfnAct::Swiglu)
                swiglu(g + r0 * F, u + r0 * F, g + r0 * F, (r1 - r0) * F);
            else
                geglu_ggml(g + r0 * F, u + r0 * F, g + r0 * F, (r1 - r0) * F);
        });
        h = g;
    } else if (L.up.n_rows == 2 * F) {                                    // fused: gate rows first
        matmul(L.up, x, n, E, u, 2 * F, pool_, kt);                       // (n, 2F)
        for_rows(pool_, n, 2 * F, [&](int64_t r0, int64_t r1) {
            add_bias(u + r0 * 2 * F, up_b, r1 - r0, 2 * F);
            for (int64_t r = r0; r < r1; ++r) geglu_ggml(u + r * 2 * F, u + r * 2 * F + F, g + r * F, F);
        });
        h = g;
    } else {
        matmul(L.up, x, n, E, u, F, pool_, kt);                           // (n, F)
        for_rows(pool_, n, F, [&](int64_t r0, int64_t r1) {
            add_bias(u + r0 * F, up_b, r1 - r0, F);
            gelu_ggml(u + r0 * F, u + r0 * F, (r1 - r0) * F);
        });
        h = u;
    }
    matmul(L.down, h, n, F, o, E, pool_, kt);                             // (n, E)
    const float* down_b = t.ffn_bias ? L.down_b : nullptr;
    for_rows(pool_, n, E, [&](int64_t r0, int64_t r1) {
        const int64_t rows = r1 - r0, at = r0 * E;
        add_bias(o + at, down_b, rows, E);
        add(o + at, x + at, cur + at, rows * E);
        layer_norm(cur + at, L.layer_out_norm, L.layer_out_norm_b, cur + at, rows, E, p.norm_eps);
    });
    x_.swap(cur_);
}

void Encoder::classify(const float* x, int64_t n, float* out) {
    if (!m_.has_classifier()) throw std::invalid_argument("the model has no classifier head (cls.weight)");
    const KernelTable& kt = kernels();
    const int64_t E = m_.params().n_embd, H = m_.cls().n_rows;
    std::vector<float> h(n * H);                                          // (n, H)
    matmul(m_.cls(), x, n, E, h.data(), H, pool_, kt);
    add_bias(h.data(), m_.cls_b(), n, H);
    for (float& v : h) v = std::tanh(v);
    if (!m_.cls_out().data) {
        std::copy(h.begin(), h.end(), out);
        return;
    }
    const int64_t C = m_.cls_out().n_rows;
    matmul(m_.cls_out(), h.data(), n, H, out, C, pool_, kt);             // (n, C)
    add_bias(out, m_.cls_out_b(), n, C);
}

}  // namespace pyllama
