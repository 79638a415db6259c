// AVX2 + F16C element-wise kernels whose results equal the generic ones bit for
// bit: F32 -> F16 rounding (F16C rounds to nearest even as fp32_to_fp16 does;
// blocks holding a NaN take the scalar path, which writes its canonical quiet
// NaN), and ggml's table GELU, whose index is that rounding.
#include <immintrin.h>

#include "../kernels.h"

namespace pyllama {
namespace {

constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

inline bool has_nan(__m256 v) { return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0; }

void quantize_f16(const float* x, void* dst, int64_t n) {
    fp16_t* y = static_cast<fp16_t*>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (has_nan(v)) {
            for (int l = 0; l < 8; ++l) y[i + l] = fp32_to_fp16(x[i + l]);
            continue;
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(v, kRound));
    }
    for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

inline float gelu_one(const float* table, float v) {
    if (v <= -10.0f) return 0.0f;
    if (v >= 10.0f) return v;
    return table[fp32_to_fp16(v)];
}

// y = gelu(x) [* up] through the table (ops.cpp's gelu_ggml1 per element).
void gelu_table(const float* table, const float* x, const float* up, float* y, int64_t n) {
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        __m256 g;
        if (has_nan(v)) {
            alignas(32) float t[8];
            for (int l = 0; l < 8; ++l) t[l] = gelu_one(table, x[i + l]);
            g = _mm256_load_ps(t);
        } else {
            const __m256i idx = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(v, kRound));
            g = _mm256_i32gather_ps(table, idx, 4);
            g = _mm256_blendv_ps(g, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
            g = _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LE_OQ), g);
        }
        if (up) g = _mm256_mul_ps(g, _mm256_loadu_ps(up + i));
        _mm256_storeu_ps(y + i, g);
    }
    for (; i < n; ++i) y[i] = up ? gelu_one(table, x[i]) * up[i] : gelu_one(table, x[i]);
}

}  // namespace

void fill_ops_avx2(KernelTable& t) {
    t.quantize[static_cast<int>(GgmlType::F16)] = quantize_f16;
    t.gelu_table = gelu_table;
}

}  // namespace pyllama
