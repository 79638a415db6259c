// Portable dequantization of every block format. Compiled with
// -ffp-contract=off: the multiply-then-add order must round exactly as ggml
// (and gguf.quants) do, so no fused multiply-adds.
#include <cstring>

#include "kernels.h"

namespace pyllama {
namespace {

void dequant_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, n * sizeof(float)); }

void dequant_f16(const void* src, float* y, int64_t n) {
    const fp16_t* x = static_cast<const fp16_t*>(src);
    for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void dequant_bf16(const void* src, float* y, int64_t n) {
    const bf16_t* x = static_cast<const bf16_t*>(src);
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

void dequant_q4_0(const void* src, float* y, int64_t n) {
    const block_q4_0* x = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = d * (float)((x[i].qs[j] & 0x0f) - 8);
            y[j + QK4_0 / 2] = d * (float)((x[i].qs[j] >> 4) - 8);
        }
    }
}

void dequant_q4_1(const void* src, float* y, int64_t n) {
    const block_q4_1* x = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = d * (float)(x[i].qs[j] & 0x0f) + m;
            y[j + QK4_1 / 2] = d * (float)(x[i].qs[j] >> 4) + m;
        }
    }
}

void dequant_q5_0(const void* src, float* y, int64_t n) {
    const block_q5_0* x = static_cast<const block_q5_0*>(src);
    for (int64_t i = 0; i < n / QK5_0; ++i, y += QK5_0) {
        const float d = fp16_to_fp32(x[i].d);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_0 / 2; ++j) {
            const int hi0 = (qh >> j) & 1, hi1 = (qh >> (j + 16)) & 1;
            y[j] = d * (float)(((x[i].qs[j] & 0x0f) | hi0 << 4) - 16);
            y[j + QK5_0 / 2] = d * (float)(((x[i].qs[j] >> 4) | hi1 << 4) - 16);
        }
    }
}

void dequant_q5_1(const void* src, float* y, int64_t n) {
    const block_q5_1* x = static_cast<const block_q5_1*>(src);
    for (int64_t i = 0; i < n / QK5_1; ++i, y += QK5_1) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK5_1 / 2; ++j) {
            const int hi0 = (qh >> j) & 1, hi1 = (qh >> (j + 16)) & 1;
            y[j] = d * (float)((x[i].qs[j] & 0x0f) | hi0 << 4) + m;
            y[j + QK5_1 / 2] = d * (float)((x[i].qs[j] >> 4) | hi1 << 4) + m;
        }
    }
}

// Q8_0 and Q8_1 share the (d, qs[32]) part; Q8_1's sum field plays no role here.
template <typename Block>
void dequant_q8(const void* src, float* y, int64_t n) {
    const Block* x = static_cast<const Block*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK8_0; ++j) y[j] = (float)x[i].qs[j] * d;
    }
}

void dequant_iq4_nl(const void* src, float* y, int64_t n) {
    const block_iq4_nl* x = static_cast<const block_iq4_nl*>(src);
    for (int64_t i = 0; i < n / QK4_NL; ++i, y += QK4_NL) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < QK4_NL / 2; ++j) {
            y[j] = d * (float)kvalues_iq4nl[x[i].qs[j] & 0x0f];
            y[j + QK4_NL / 2] = d * (float)kvalues_iq4nl[x[i].qs[j] >> 4];
        }
    }
}

void dequant_q2_K(const void* src, float* y, int64_t n) {
    const block_q2_K* x = static_cast<const block_q2_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        const uint8_t* q = x[i].qs;
        int is = 0;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; ++l) *y++ = dl * (float)((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

// Unpack the 16 six-bit signed scales of a Q3_K block.
void q3_K_scales(const uint8_t* packed, int8_t* out) {
    for (int j = 0; j < 16; ++j) {
        const int lo = (j < 8 ? packed[j] : packed[j - 8] >> 4) & 0x0f;
        const int hi = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

void dequant_q3_K(const void* src, float* y, int64_t n) {
    const block_q3_K* x = static_cast<const block_q3_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        int8_t scales[16];
        q3_K_scales(x[i].scales, scales);
        const uint8_t* q = x[i].qs;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int part = 0; part < 2; ++part) {
                    const float dl = d * (float)scales[is++];
                    for (int l = 0; l < 16; ++l) {
                        const int k = l + 16 * part;
                        const int v = ((q[k] >> shift) & 3) - ((x[i].hmask[k] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

void dequant_q4_K(const void* src, float* y, int64_t n) {
    const block_q4_K* x = static_cast<const block_q4_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        uint8_t sc[8], mn[8];
        k4_scales_mins(x[i].scales, sc, mn);
        const uint8_t* q = x[i].qs;
        for (int j = 0; j < 4; ++j, q += 32) {
            const float d1 = d * (float)sc[2 * j], m1 = dmin * (float)mn[2 * j];
            const float d2 = d * (float)sc[2 * j + 1], m2 = dmin * (float)mn[2 * j + 1];
            for (int l = 0; l < 32; ++l) *y++ = d1 * (float)(q[l] & 0x0f) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

void dequant_q5_K(const void* src, float* y, int64_t n) {
    const block_q5_K* x = static_cast<const block_q5_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
        uint8_t sc[8], mn[8];
        k4_scales_mins(x[i].scales, sc, mn);
        const uint8_t* ql = x[i].qs;
        for (int j = 0; j < 4; ++j, ql += 32) {
            const float d1 = d * (float)sc[2 * j], m1 = dmin * (float)mn[2 * j];
            const float d2 = d * (float)sc[2 * j + 1], m2 = dmin * (float)mn[2 * j + 1];
            const uint8_t u1 = (uint8_t)(1u << (2 * j)), u2 = (uint8_t)(2u << (2 * j));
            for (int l = 0; l < 32; ++l) *y++ = d1 * (float)((ql[l] & 0x0f) + (x[i].qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (float)((ql[l] >> 4) + (x[i].qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void dequant_q6_K(const void* src, float* y, int64_t n) {
    const block_q6_K* x = static_cast<const block_q6_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void dequant_q8_K(const void* src, float* y, int64_t n) {
    const block_q8_K* x = static_cast<const block_q8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i)
        for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * (float)x[i].qs[j];
}

}  // namespace

void k4_scales_mins(const uint8_t* q, uint8_t* sc, uint8_t* mn) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            mn[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
            mn[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }
}

void q3_K_unpack_scales(const uint8_t* packed, int8_t* out) { q3_K_scales(packed, out); }

void fill_dequantize_generic(KernelTable& t) {
    auto set = [&](GgmlType ty, DequantizeFn f) { t.dequantize[static_cast<int>(ty)] = f; };
    set(GgmlType::F32, dequant_f32);
    set(GgmlType::F16, dequant_f16);
    set(GgmlType::BF16, dequant_bf16);
    set(GgmlType::Q4_0, dequant_q4_0);
    set(GgmlType::Q4_1, dequant_q4_1);
    set(GgmlType::Q5_0, dequant_q5_0);
    set(GgmlType::Q5_1, dequant_q5_1);
    set(GgmlType::Q8_0, dequant_q8<block_q8_0>);
    set(GgmlType::Q8_1, dequant_q8<block_q8_1>);
    set(GgmlType::IQ4_NL, dequant_iq4_nl);
    set(GgmlType::Q2_K, dequant_q2_K);
    set(GgmlType::Q3_K, dequant_q3_K);
    set(GgmlType::Q4_K, dequant_q4_K);
    set(GgmlType::Q5_K, dequant_q5_K);
    set(GgmlType::Q6_K, dequant_q6_K);
    set(GgmlType::Q8_K, dequant_q8_K);
}

}  // namespace pyllama
