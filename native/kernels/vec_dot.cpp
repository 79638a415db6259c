// Portable dot products: one weight row against one activation row in the
// weight type's vec_dot_type. The integer part of every block is exact; only
// the float accumulation order differs from the SIMD variants.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels.h"
#include "repack.h"

namespace pyllama {
namespace {

// Float formats: products rounded to float (as the element type widened), summed in double.
template <typename T, float (*Widen)(T)>
float dot_float(int64_t n, const void* w, const void* a) {
    const T* x = static_cast<const T*>(w);
    const T* y = static_cast<const T*>(a);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += (double)(Widen(x[i]) * Widen(y[i]));
    return (float)sum;
}
float widen_f32(float v) { return v; }

float dot_q4_0(int64_t n, const void* w, const void* a) {
    const block_q4_0* x = static_cast<const block_q4_0*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += ((x[i].qs[j] & 0x0f) - 8) * y[i].qs[j];
            isum += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    return sum;
}

float dot_q4_1(int64_t n, const void* w, const void* a) {
    const block_q4_1* x = static_cast<const block_q4_1*>(w);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += (x[i].qs[j] & 0x0f) * y[i].qs[j];
            isum += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        sum += (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    return sum;
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
    const block_q5_0* x = static_cast<const block_q5_0*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += (((x[i].qs[j] & 0x0f) | ((qh >> j) & 1) << 4) - 16) * y[i].qs[j];
            isum += (((x[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16) * y[i].qs[j + 16];
        }
        sum += (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    return sum;
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
    const block_q5_1* x = static_cast<const block_q5_1*>(w);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        uint32_t qh;
        std::memcpy(&qh, x[i].qh, 4);
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += ((x[i].qs[j] & 0x0f) | ((qh >> j) & 1) << 4) * y[i].qs[j];
            isum += ((x[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) * y[i].qs[j + 16];
        }
        sum += (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
               fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    return sum;
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
    const block_q8_0* x = static_cast<const block_q8_0*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        int isum = 0;
        for (int j = 0; j < QK8_0; ++j) isum += x[i].qs[j] * y[i].qs[j];
        sum += (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    return sum;
}

float dot_iq4_nl(int64_t n, const void* w, const void* a) {
    const block_iq4_nl* x = static_cast<const block_iq4_nl*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK4_NL; ++i) {
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            isum += kvalues_iq4nl[x[i].qs[j] & 0x0f] * y[i].qs[j];
            isum += kvalues_iq4nl[x[i].qs[j] >> 4] * y[i].qs[j + 16];
        }
        sum += (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    return sum;
}

float dot_q2_K(int64_t n, const void* w, const void* a) {
    const block_q2_K* x = static_cast<const block_q2_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
        int isum = 0, is = 0;
        const uint8_t* q2 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        for (int half = 0; half < 2; ++half, q2 += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part, q8 += 16) {
                    int s = 0;
                    for (int l = 0; l < 16; ++l) s += q8[l] * ((q2[l + 16 * part] >> shift) & 3);
                    isum += (x[i].scales[is++] & 0x0f) * s;
                }
            }
        }
        const float dall = y[i].d * fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    return sum;
}

float dot_q3_K(int64_t n, const void* w, const void* a) {
    const block_q3_K* x = static_cast<const block_q3_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int8_t scales[16];
        q3_K_unpack_scales(x[i].scales, scales);
        int isum = 0, is = 0;
        const uint8_t* q3 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        uint8_t m = 1;
        for (int half = 0; half < 2; ++half, q3 += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int part = 0; part < 2; ++part, q8 += 16) {
                    int s = 0;
                    for (int l = 0; l < 16; ++l) {
                        const int k = l + 16 * part;
                        s += q8[l] * (((q3[k] >> shift) & 3) - ((x[i].hmask[k] & m) ? 0 : 4));
                    }
                    isum += scales[is++] * s;
                }
            }
        }
        sum += y[i].d * fp16_to_fp32(x[i].d) * (float)isum;
    }
    return sum;
}

float dot_q4_K(int64_t n, const void* w, const void* a) {
    const block_q4_K* x = static_cast<const block_q4_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        k4_scales_mins(x[i].scales, sc, mn);
        int summs = 0;
        for (int j = 0; j < 8; ++j) summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        int isum = 0;
        const uint8_t* q4 = x[i].qs;
        const int8_t* q8 = y[i].qs;
        for (int j = 0; j < 4; ++j, q4 += 32, q8 += 64) {
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; ++l) {
                s1 += (q4[l] & 0x0f) * q8[l];
                s2 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc[2 * j] * s1 + sc[2 * j + 1] * s2;
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        sum += d * (float)isum - dmin * (float)summs;
    }
    return sum;
}

float dot_q5_K(int64_t n, const void* w, const void* a) {
    const block_q5_K* x = static_cast<const block_q5_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        uint8_t sc[8], mn[8];
        k4_scales_mins(x[i].scales, sc, mn);
        int summs = 0;
        for (int j = 0; j < 8; ++j) summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        int isum = 0;
        const uint8_t* ql = x[i].qs;
        const int8_t* q8 = y[i].qs;
        for (int j = 0; j < 4; ++j, ql += 32, q8 += 64) {
            const uint8_t u1 = (uint8_t)(1u << (2 * j)), u2 = (uint8_t)(2u << (2 * j));
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; ++l) {
                s1 += ((ql[l] & 0x0f) + (x[i].qh[l] & u1 ? 16 : 0)) * q8[l];
                s2 += ((ql[l] >> 4) + (x[i].qh[l] & u2 ? 16 : 0)) * q8[l + 32];
            }
            isum += sc[2 * j] * s1 + sc[2 * j + 1] * s2;
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        sum += d * (float)isum - dmin * (float)summs;
    }
    return sum;
}

float dot_q6_K(int64_t n, const void* w, const void* a) {
    const block_q6_K* x = static_cast<const block_q6_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* q8 = y[i].qs;
        int isum = 0;
        for (int half = 0; half < 2; ++half, ql += 64, qh += 32, q8 += 128) {
            const int8_t* sc = x[i].scales + 8 * half;
            int s[8] = {0};
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                s[is + 0] += (((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32) * q8[l];
                s[is + 2] += (((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32) * q8[l + 32];
                s[is + 4] += (((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32) * q8[l + 64];
                s[is + 6] += (((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32) * q8[l + 96];
            }
            for (int j = 0; j < 8; ++j) isum += sc[j] * s[j];
        }
        sum += y[i].d * fp16_to_fp32(x[i].d) * (float)isum;
    }
    return sum;
}

}  // namespace

// Packed row groups (repack.h): row r of chunk c holds qs bytes [4c, 4c+4).
template <bool kHasMin>
void dot8_q4(int64_t n, const void* group, const void* a, const int32_t*, float* out) {
    using Block = std::conditional_t<kHasMin, block_q4_1x8, block_q4_0x8>;
    using Act = std::conditional_t<kHasMin, block_q8_1, block_q8_0>;
    const Block* x = static_cast<const Block*>(group);
    const Act* y = static_cast<const Act*>(a);
    const int offset = kHasMin ? 0 : 8;
    for (int r = 0; r < 8; ++r) {
        float sum = 0.0f;
        for (int64_t i = 0; i < n / 32; ++i) {
            int isum = 0;
            for (int c = 0; c < 4; ++c)
                for (int j = 0; j < 4; ++j) {
                    const uint8_t b = x[i].qs[32 * c + 4 * r + j];
                    isum += ((b & 0x0f) - offset) * y[i].qs[4 * c + j];
                    isum += ((b >> 4) - offset) * y[i].qs[16 + 4 * c + j];
                }
            sum += (float)isum * (fp16_to_fp32(x[i].d[r]) * fp16_to_fp32(y[i].d));
            if constexpr (kHasMin) sum += fp16_to_fp32(x[i].m[r]) * fp16_to_fp32(y[i].s);
        }
        out[r] = sum;
    }
}

void axpy_f32(int64_t n, float s, const float* x, float* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::fma(x[i], s, y[i]);
}

void mad_f16(int64_t n, float s, const fp16_t* x, fp16_t* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(std::fma(fp16_to_fp32(x[i]), s, fp16_to_fp32(y[i])));
}

void scale_f16(int64_t n, float s, fp16_t* y) {
    for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(fp16_to_fp32(y[i]) * s);
}

void fill_vec_dot_generic(KernelTable& t) {
    t.axpy_f32 = axpy_f32;
    t.mad_f16 = mad_f16;
    t.scale_f16 = scale_f16;
    t.vec_dot8[static_cast<int>(GgmlType::Q4_0)] = dot8_q4<false>;
    t.vec_dot8[static_cast<int>(GgmlType::Q4_1)] = dot8_q4<true>;
    auto set = [&](GgmlType ty, VecDotFn f) { t.vec_dot[static_cast<int>(ty)] = f; };
    set(GgmlType::F32, dot_float<float, widen_f32>);
    set(GgmlType::F16, dot_float<fp16_t, fp16_to_fp32>);
    set(GgmlType::BF16, dot_float<bf16_t, bf16_to_fp32>);
    set(GgmlType::Q4_0, dot_q4_0);
    set(GgmlType::Q4_1, dot_q4_1);
    set(GgmlType::Q5_0, dot_q5_0);
    set(GgmlType::Q5_1, dot_q5_1);
    set(GgmlType::Q8_0, dot_q8_0);
    set(GgmlType::IQ4_NL, dot_iq4_nl);
    set(GgmlType::Q2_K, dot_q2_K);
    set(GgmlType::Q3_K, dot_q3_K);
    set(GgmlType::Q4_K, dot_q4_K);
    set(GgmlType::Q5_K, dot_q5_K);
    set(GgmlType::Q6_K, dot_q6_K);
}

}  // namespace pyllama
