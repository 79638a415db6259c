// Portable dot products: one weight row against one activation row in the
// weight type's vec_dot_type. The integer part of every block is exact; only
// the float accumulation order differs from the SIMD variants.
#include <cmath>
#include <type_traits>

#include "block_values.h"
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

// Single-scale formats: the integer dot of each block, times both block scales
// (plus, for Q4_1/Q5_1, the weight offset times the activation block's s = d * sum).
template <typename Block>
float dot_single_scale(int64_t n, const void* w, const void* a) {
    using Act = std::conditional_t<kHasOffset<Block>, block_q8_1, block_q8_0>;
    const Block* x = static_cast<const Block*>(w);
    const Act* y = static_cast<const Act*>(a);
    int8_t buf[QK8_0];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const int8_t* q = block_values(x[i], buf);
        int isum = 0;
        for (int j = 0; j < QK8_0; ++j) isum += q[j] * y[i].qs[j];
        float block = (float)isum * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
        if constexpr (kHasOffset<Block>) block += fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
        sum += block;
    }
    return sum;
}

// Sub-block formats: per sub-block the integer dot times its integer scale;
// the mins meet the activations through their 16-value sums (bsums).
template <typename Block>
float dot_sub_blocks(int64_t n, const void* w, const void* a) {
    constexpr int kSub = kSubBlock<Block>, kN = QK_K / kSub;
    const Block* x = static_cast<const Block*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    int8_t q[QK_K];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        block_values(x[i], q);
        int sc[kN], mn[kN];
        sub_scales(x[i], sc, mn);
        int isum = 0;
        for (int s = 0; s < kN; ++s) {
            int si = 0;
            for (int l = 0; l < kSub; ++l) si += q[kSub * s + l] * y[i].qs[kSub * s + l];
            isum += sc[s] * si;
        }
        const float d = y[i].d * fp16_to_fp32(x[i].d);
        if constexpr (kHasSubMins<Block>) {
            int summs = 0;
            for (int s = 0; s < kN; ++s)
                for (int b = s * kSub / 16; b < (s + 1) * kSub / 16; ++b) summs += mn[s] * y[i].bsums[b];
            const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
            sum += d * (float)isum - dmin * (float)summs;
        } else {
            sum += d * (float)isum;
        }
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
    t.vec_dot[static_cast<int>(GgmlType::F32)] = dot_float<float, widen_f32>;
    t.vec_dot[static_cast<int>(GgmlType::F16)] = dot_float<fp16_t, fp16_to_fp32>;
    t.vec_dot[static_cast<int>(GgmlType::BF16)] = dot_float<bf16_t, bf16_to_fp32>;
    for_each_block_format([&](GgmlType type, const char*, GgmlType, auto tag) {
        using Block = typename decltype(tag)::Block;
        if constexpr (kIsSubBlocks<decltype(tag)>)
            t.vec_dot[static_cast<int>(type)] = dot_sub_blocks<Block>;
        else if constexpr (!kActivationOnly<Block>)
            t.vec_dot[static_cast<int>(type)] = dot_single_scale<Block>;
    });
}

}  // namespace pyllama
