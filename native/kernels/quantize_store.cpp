// Quantization of float rows into the 4- and 5-bit block formats a KV cache may be
// stored in (llama-server's --cache-type-k/-v q4_0, q4_1, q5_0, q5_1, iq4_nl), as
// ggml's CPU backend writes them: its reference quantizers (quantize_row_*_ref),
// value for value. (F32, F16, BF16 and Q8_0 are in quantize_act.cpp.)
#include <cfloat>
#include <cmath>
#include <cstring>

#include "kernels.h"

namespace pyllama {
namespace {

// d = the value of largest magnitude / -8 (q4_0) or / -16 (q5_0); q = x / d + offset.
template <typename Block, int kMax, bool kFive>
void quantize_sym(const float* x, void* dst, int64_t n) {
    constexpr int qk = 32;
    Block* y = static_cast<Block*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, x += qk) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; ++j) {
            if (amax < std::fabs(x[j])) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        }
        const float d = max / -(float)(kMax / 2 + 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[j] * id, x1 = x[qk / 2 + j] * id;
            const float half = (float)(kMax / 2 + 1) + 0.5f;  // 8.5 or 16.5
            const int8_t t0 = (int8_t)(x0 + half), t1 = (int8_t)(x1 + half);
            const uint8_t q0 = (uint8_t)(t0 < kMax ? t0 : kMax), q1 = (uint8_t)(t1 < kMax ? t1 : kMax);
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            if constexpr (kFive) {
                qh |= ((q0 & 0x10u) >> 4) << (j + 0);
                qh |= ((q1 & 0x10u) >> 4) << (j + qk / 2);
            }
        }
        if constexpr (kFive) std::memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

// d = (max - min) / (2^bits - 1), m = min; q = (x - min) / d, rounded.
template <typename Block, int kBits>
void quantize_affine(const float* x, void* dst, int64_t n) {
    constexpr int qk = 32;
    Block* y = static_cast<Block*>(dst);
    for (int64_t i = 0; i < n / qk; ++i, x += qk) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < qk; ++j) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / (float)((1 << kBits) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = fp32_to_fp16(d);
        y[i].m = fp32_to_fp16(min);
        uint32_t qh = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = (x[j] - min) * id, x1 = (x[qk / 2 + j] - min) * id;
            uint8_t q0, q1;
            if constexpr (kBits == 4) {
                const int8_t t0 = (int8_t)(x0 + 0.5f), t1 = (int8_t)(x1 + 0.5f);
                q0 = (uint8_t)(t0 < 15 ? t0 : 15);
                q1 = (uint8_t)(t1 < 15 ? t1 : 15);
            } else {
                q0 = (uint8_t)(x0 + 0.5f);
                q1 = (uint8_t)(x1 + 0.5f);
                qh |= ((q0 & 0x10u) >> 4) << (j + 0);
                qh |= ((q1 & 0x10u) >> 4) << (j + qk / 2);
            }
            y[i].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        }
        if constexpr (kBits == 5) std::memcpy(y[i].qh, &qh, sizeof(qh));
    }
}

int best_index_int8(int n, const int8_t* val, float x) {
    if (x <= val[0]) return 0;
    if (x >= val[n - 1]) return n - 1;
    int ml = 0, mu = n - 1;
    while (mu - ml > 1) {
        const int mav = (ml + mu) / 2;
        if (x < val[mav]) mu = mav; else ml = mav;
    }
    return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// IQ4_NL without importance weights and without the scale search (ggml's
// quantize_row_iq4_nl_ref, ntry = -1): the nearest of the 16 non-linear values for
// x / d0 (d0 from the value of largest magnitude), then d refitted by least squares
// weighted by x^2.
void quantize_iq4_nl(const float* x, void* dst, int64_t n) {
    constexpr int qk = 32;
    const int8_t* values = kvalues_iq4nl;
    block_iq4_nl* y = static_cast<block_iq4_nl*>(dst);
    uint8_t L[qk];
    for (int64_t i = 0; i < n / qk; ++i, x += qk) {
        std::memset(y[i].qs, 0, sizeof(y[i].qs));
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < qk; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        float d = 0.0f;
        if (amax >= 1e-15f) {
            const float id = 1.0f / (max / values[0]);
            float sumqx = 0.0f, sumq2 = 0.0f;
            for (int j = 0; j < qk; ++j) {
                const int l = best_index_int8(16, values, id * x[j]);
                L[j] = (uint8_t)l;
                const float q = values[l], w = x[j] * x[j];
                sumqx += w * q * x[j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
        } else {
            std::memset(L, 0, sizeof(L));
        }
        y[i].d = fp32_to_fp16(d);
        for (int j = 0; j < 16; ++j) y[i].qs[j] = (uint8_t)(L[j] | (L[16 + j] << 4));
    }
}

}  // namespace

void fill_quantize_store(KernelTable& t) {
    t.quantize[static_cast<int>(GgmlType::Q4_0)] = quantize_sym<block_q4_0, 15, false>;
    t.quantize[static_cast<int>(GgmlType::Q5_0)] = quantize_sym<block_q5_0, 31, true>;
    t.quantize[static_cast<int>(GgmlType::Q4_1)] = quantize_affine<block_q4_1, 4>;
    t.quantize[static_cast<int>(GgmlType::Q5_1)] = quantize_affine<block_q5_1, 5>;
    t.quantize[static_cast<int>(GgmlType::IQ4_NL)] = quantize_iq4_nl;
}

}  // namespace pyllama
