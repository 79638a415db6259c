// Register-tiled prefill for F16 weights (AVX2 + FMA + F16C).
//
// dot_half (vec_dot_avx2.cpp) computes one output from four running sums: sum p
// accumulates lanes [32b + 8p, 32b + 8p + 8) of every 32-element block b, in
// block order, with one fused multiply-add per block; the four sums are then
// reduced as ggml reduces them. Here a tile of weight rows meets a tile of
// activation rows, every output keeping exactly that chain of fused
// multiply-adds and that reduction, so each result equals dot_half bit for bit;
// only the order in which independent chains advance differs.
//
// Activation rows are first laid out as F32 "panels": the values the dot
// product sees (rounded to F16, widened back), permuted so that sum p's lanes
// are contiguous: element 32b + 8p + l of a row goes to p * k/4 + 8b + l. A
// micro-tile of 1 weight row x 8 activation rows keeps 8 accumulators in
// registers; each weight load (converted from F16) feeds all of them.
#include <immintrin.h>

#include "../kernels.h"

namespace pyllama {
namespace {

// 1 x 8 measured best on an AVX2 EPYC (Zen 1) of 4x3, 3x4, 2x6, 2x7, 1x6, 1x8 and 1x12,
// 25-30% over 4x3 there (benchmark: F16 matmuls of MiniLM's shapes, 12 to 256 rows):
// each F16 weight load (two uops to widen) feeds eight fused multiply-adds, whose
// activations come straight from memory. (The tails below handle any other sizes.)
constexpr int kTileW = 1;  // weight rows per micro-tile
constexpr int kTileA = 8;  // activation rows per micro-tile

inline void panel_store(float* panel, int64_t k, int64_t i, __m256 v) {
    const int64_t b = i >> 5, p = (i >> 3) & 3;
    _mm256_storeu_ps(panel + p * (k >> 2) + 8 * b, v);
}

// One activation row rounded to F16 (nearest even, as fp32_to_fp16) and widened.
void panel_act_f16(const float* x, float* panel, int64_t k) {
    for (int64_t i = 0; i < k; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        panel_store(panel, k, i, _mm256_cvtph_ps(h));
    }
}

// dot_half's reduction of its four running sums.
inline float reduce4(__m256 s0, __m256 s1, __m256 s2, __m256 s3) {
    const __m256 r = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    return _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
}

// Weight row r's lanes [8i, 8i + 8) of running sum p (i counts 32-element
// blocks), converted from the F16 row (rows `stride` bytes apart).
inline __m256 load_weights(const uint8_t* w, size_t stride, int r, int p, int64_t i) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + r * stride + 2 * (32 * i + 8 * p))));
}

// RW weight rows x RA activation rows (panel rows k apart).
template <int RW, int RA>
void micro_tile(int64_t k, const uint8_t* w, size_t w_stride, const float* a, float* y, int64_t y_stride) {
    const int64_t q = k >> 2, nb = k >> 5;  // floats per running sum, blocks
    __m256 sums[4][RW][RA];
    for (int p = 0; p < 4; ++p) {
        __m256 acc[RW][RA];
        for (int r = 0; r < RW; ++r)
            for (int j = 0; j < RA; ++j) acc[r][j] = _mm256_setzero_ps();
        const float* ap = a + p * q;
        for (int64_t i = 0; i < nb; ++i) {
            __m256 av[RA];
            for (int j = 0; j < RA; ++j) av[j] = _mm256_loadu_ps(ap + j * k + 8 * i);
            for (int r = 0; r < RW; ++r) {
                const __m256 wv = load_weights(w, w_stride, r, p, i);
                for (int j = 0; j < RA; ++j) acc[r][j] = _mm256_fmadd_ps(wv, av[j], acc[r][j]);
            }
        }
        for (int r = 0; r < RW; ++r)
            for (int j = 0; j < RA; ++j) sums[p][r][j] = acc[r][j];
    }
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RA; ++j) y[j * y_stride + r] = reduce4(sums[0][r][j], sums[1][r][j], sums[2][r][j], sums[3][r][j]);
}

// RA activation rows against every weight row: the activation rows stay in L1
// while the weights stream past them.
template <int RA>
void act_strip(int64_t k, const uint8_t* w, size_t w_stride, int64_t nw, const float* a, float* y, int64_t y_stride) {
    int64_t r = 0;
    for (; r + kTileW <= nw; r += kTileW) micro_tile<kTileW, RA>(k, w + r * w_stride, w_stride, a, y + r, y_stride);
    switch (nw - r) {
        case 3: micro_tile<3, RA>(k, w + r * w_stride, w_stride, a, y + r, y_stride); break;
        case 2: micro_tile<2, RA>(k, w + r * w_stride, w_stride, a, y + r, y_stride); break;
        case 1: micro_tile<1, RA>(k, w + r * w_stride, w_stride, a, y + r, y_stride); break;
        default: break;
    }
}

void gemm_f16(int64_t k, const void* w, size_t w_stride, int64_t nw, const float* a, int64_t na, float* y,
              int64_t y_stride) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    int64_t j = 0;
    for (; j + kTileA <= na; j += kTileA) act_strip<kTileA>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride);
    switch (na - j) {
        case 7: act_strip<7>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        case 6: act_strip<6>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        case 5: act_strip<5>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        case 4: act_strip<4>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        case 3: act_strip<3>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        case 2: act_strip<2>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        case 1: act_strip<1>(k, wb, w_stride, nw, a + j * k, y + j * y_stride, y_stride); break;
        default: break;
    }
}

}  // namespace

void fill_gemm_avx2(KernelTable& t) {
    t.panel_act[static_cast<int>(GgmlType::F16)] = panel_act_f16;
    t.gemm_panel[static_cast<int>(GgmlType::F16)] = gemm_f16;
}

}  // namespace pyllama
