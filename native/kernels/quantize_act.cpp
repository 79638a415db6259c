// Quantization of float activations into the formats dot products consume.
// Rounding is round-half-to-even, as ggml's x86 paths do, so our activation
// blocks equal llama.cpp's on this hardware.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace pyllama {
namespace {

// Round to nearest, ties to even, for |x| < 2^22 (ggml's nearest_int).
inline int nearest_int(float x) {
    const float v = x + 12582912.f;
    int32_t i;
    std::memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

float block_amax(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    return amax;
}

// Q8_0 and Q8_1: d = amax / 127; Q8_1 also stores s = d * sum(qs).
template <typename Block>
void quantize_q8(const float* x, void* dst, int64_t n) {
    constexpr int kValues = sizeof(Block::qs);
    Block* y = static_cast<Block*>(dst);
    for (int64_t i = 0; i < n / kValues; ++i, x += kValues) {
        const float amax = block_amax(x, kValues);
        const float d = amax / 127.f;
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < kValues; ++j) {
            const int q = nearest_int(x[j] * id);
            y[i].qs[j] = (int8_t)q;
            sum += q;
        }
        y[i].d = fp32_to_fp16(d);
        if constexpr (std::is_same_v<Block, block_q8_1>) y[i].s = fp32_to_fp16(d * (float)sum);
    }
}

void quantize_q8_K(const float* x, void* dst, int64_t n) {
    block_q8_K* y = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(block_q8_K));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += y[i].qs[j * 16 + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

void quantize_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, n * sizeof(float)); }

template <typename T, T (*Narrow)(float)>
void quantize_narrow(const float* x, void* dst, int64_t n) {
    T* y = static_cast<T*>(dst);
    for (int64_t i = 0; i < n; ++i) y[i] = Narrow(x[i]);
}

}  // namespace

void fill_quantize_generic(KernelTable& t) {
    auto set = [&](GgmlType ty, QuantizeFn f) { t.quantize[static_cast<int>(ty)] = f; };
    set(GgmlType::F32, quantize_f32);
    set(GgmlType::F16, quantize_narrow<fp16_t, fp32_to_fp16>);
    set(GgmlType::BF16, quantize_narrow<bf16_t, fp32_to_bf16>);
    set(GgmlType::Q8_0, quantize_q8<block_q8_0>);
    set(GgmlType::Q8_1, quantize_q8<block_q8_1>);
    set(GgmlType::Q8_K, quantize_q8_K);
}

}  // namespace pyllama
