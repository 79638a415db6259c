// Causal attention over the F16 KV store (see ops.h for the contract).
//
// Like llama.cpp's CPU path, the query row is rounded to F16 before the
// Q·K dot products (F16 x F16 products accumulated in F32), the softmax runs in
// F32 and the weighted sum of V accumulates in F32.
#include <cmath>
#include <vector>

#include "ops.h"

namespace pyllama {

void attention(const AttentionArgs& a, ThreadPool& pool) {
    const int64_t group = a.n_head / a.n_head_kv;
    const int64_t hd = a.head_dim;
    const int64_t n_items = a.n_tokens * a.n_head;
    pool.run([&](int ith, int nth) {
        std::vector<float> scores(a.n_kv);      // (n_kv)
        std::vector<float> qf(hd), acc(hd);     // (head_dim)
        std::vector<int32_t> cells(a.n_kv);
        for (int64_t it = ith; it < n_items; it += nth) {
            const int64_t t = it / a.n_head, h = it % a.n_head, hk = h / group;
            const float* q = a.q + it * hd;
            for (int64_t d = 0; d < hd; ++d) qf[d] = fp16_to_fp32(fp32_to_fp16(q[d]));
            const int32_t p = a.q_pos[t];
            const uint64_t seq_bit = 1ull << a.q_seq[t];
            int64_t n_cells = 0;
            float mx = -INFINITY;
            for (int64_t c = 0; c < a.n_kv; ++c) {
                const int32_t kp = a.kv_pos[c];
                if (kp < 0 || kp > p || !(a.kv_seq[c] & seq_bit)) continue;
                if (a.window > 0 && p - kp >= a.window) continue;
                const fp16_t* k = a.k + (c * a.n_head_kv + hk) * hd;
                float s = 0.0f;
                for (int64_t d = 0; d < hd; ++d) s += qf[d] * fp16_to_fp32(k[d]);
                s *= a.scale;
                if (a.softcap > 0.0f) s = a.softcap * std::tanh(s / a.softcap);
                scores[n_cells] = s;
                cells[n_cells++] = (int32_t)c;
                mx = std::fmax(mx, s);
            }
            float* o = a.out + it * hd;
            for (int64_t d = 0; d < hd; ++d) acc[d] = 0.0f;
            float sum = 0.0f;
            for (int64_t j = 0; j < n_cells; ++j) {
                const float e = std::exp(scores[j] - mx);
                sum += e;
                const fp16_t* v = a.v + ((int64_t)cells[j] * a.n_head_kv + hk) * hd;
                for (int64_t d = 0; d < hd; ++d) acc[d] += e * fp16_to_fp32(v[d]);
            }
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            for (int64_t d = 0; d < hd; ++d) o[d] = acc[d] * inv;
        }
    });
}

}  // namespace pyllama
