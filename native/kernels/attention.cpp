#include "attention.h"

#include <cmath>
#include <cstdlib>
#include <vector>

namespace pyllama {

// Per (token, head), as ggml's CPU flash attention computes one query row:
// one pass over the visible cells with a running maximum M and sum S; the
// output accumulates in F16 when V is F16 (rounded after every step, as
// llama.cpp does; its answers are the reference) and in F32 otherwise.
void attention(const AttentionArgs& a, ThreadPool& pool, const KernelTable& kt) {
    const int64_t group = a.n_head / a.n_head_kv;
    const GgmlType qt = type_traits((uint32_t)a.kv.type_k)->vec_dot_type;
    const QuantizeFn to_qt = kt.quantize[(int)qt];
    const VecDotFn dot = kt.vec_dot[(int)a.kv.type_k];
    const DequantizeFn v_to_f32 = a.kv.type_v == GgmlType::F32 ? nullptr : kt.dequantize[(int)a.kv.type_v];
    const bool f16_acc = a.kv.type_v == GgmlType::F16;
    const size_t q_bytes = row_size(qt, a.head_dim_k);
    const int64_t n_items = a.n_tokens * a.n_head;
    const int64_t dv = a.head_dim_v;
    const float scale = a.softcap > 0.0f ? a.scale / a.softcap : a.scale;
    pool.run([&](int ith, int nth) {
        std::vector<uint8_t> qbuf(q_bytes);  // one query row in K's dot format
        std::vector<fp16_t> acc16(dv);       // (head_dim_v)
        std::vector<float> v32(dv);          // (head_dim_v) one dequantized V row
        for (int64_t it = ith; it < n_items; it += nth) {
            const int64_t t = it / a.n_head, h = it % a.n_head, hk = h / group;
            to_qt(a.q + it * a.head_dim_k, qbuf.data(), a.head_dim_k);
            float* o = a.out + it * dv;  // (head_dim_v)
            for (int64_t d = 0; d < dv; ++d) o[d] = 0.0f;
            if (f16_acc)
                for (int64_t d = 0; d < dv; ++d) acc16[d] = 0;
            float S = 0.0f, M = -INFINITY;
            for (int64_t j = a.begin[t]; j < a.end[t]; ++j) {
                const size_t cell = (size_t)a.cells[j];
                const uint8_t* k = a.kv.k + cell * a.kv.k_cell_bytes + hk * a.kv.k_head_bytes;
                const uint8_t* v = a.kv.v + cell * a.kv.v_cell_bytes + hk * a.kv.v_head_bytes;
                float s = dot(a.head_dim_k, k, qbuf.data()) * scale;
                if (a.softcap > 0.0f) s = a.softcap * std::tanh(s);
                if (a.alibi) s += a.alibi[h] * -(float)std::abs(a.q_pos[t] - a.kv_pos[cell]);
                float ms = 1.0f, vs = 1.0f;
                if (s > M) {
                    const float m_old = M;
                    M = s;
                    ms = std::exp(m_old - M);
                    if (f16_acc)
                        kt.scale_f16(dv, ms, acc16.data());
                    else
                        for (int64_t d = 0; d < dv; ++d) o[d] *= ms;
                } else {
                    vs = std::exp(s - M);
                }
                if (f16_acc) {
                    kt.mad_f16(dv, vs, reinterpret_cast<const fp16_t*>(v), acc16.data());
                } else if (v_to_f32) {
                    v_to_f32(v, v32.data(), dv);
                    kt.axpy_f32(dv, vs, v32.data(), o);
                } else {
                    kt.axpy_f32(dv, vs, reinterpret_cast<const float*>(v), o);
                }
                S = S * ms + vs;
            }
            if (f16_acc)
                for (int64_t d = 0; d < dv; ++d) o[d] = fp16_to_fp32(acc16[d]);
            const float inv = S == 0.0f ? 0.0f : 1.0f / S;
            for (int64_t d = 0; d < dv; ++d) o[d] *= inv;
        }
    });
}

void alibi_slopes(int64_t n_head, float max_bias, float* out) {
    const uint32_t n_head_log2 = 1u << (uint32_t)std::floor(std::log2((double)n_head));
    const float m0 = std::pow(2.0f, -max_bias / (float)n_head_log2);
    const float m1 = std::pow(2.0f, -(max_bias / 2.0f) / (float)n_head_log2);
    for (int64_t h = 0; h < n_head; ++h)
        out[h] = (uint32_t)h < n_head_log2 ? std::pow(m0, (float)(h + 1)) : std::pow(m1, (float)(2 * (h - n_head_log2) + 1));
}

}  // namespace pyllama
