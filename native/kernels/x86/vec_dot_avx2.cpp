// AVX2 + FMA + F16C dot products. Compiled with those flags only; used only
// when CPUID reports them. Integer parts use maddubs (u8 x s8 -> s16 pairs),
// which cannot saturate for any of these value ranges.
#include <cmath>
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "../kernels.h"
#include "../repack.h"

namespace pyllama {
namespace {

inline float hsum(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

inline float hsum4(__m128 r) {
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

inline float h2f(fp16_t h) { return _cvtsh_ss(h); }

// Sum of unsigned x signed byte products, as 8 float lanes.
inline __m256 dot_us8(__m256i ux, __m256i sy) {
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(ux, sy), _mm256_set1_epi16(1)));
}
// Sum of signed x signed byte products (|x| <= 127), as 8 float lanes.
inline __m256 dot_s8(__m256i x, __m256i y) { return dot_us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)); }

// 16 packed bytes -> 32 nibbles: low nibbles (elements 0..15) then high (16..31).
inline __m256i nibbles32(const uint8_t* p) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes, 0xff where the bit is set.
inline __m256i bits32(const uint8_t* p) {
    uint32_t x;
    std::memcpy(&x, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

// The hardware prefetcher alone leaves streaming matvec short of the memory
// bandwidth (loads and compute barely overlap). Each loop iteration over a
// weight block of `Bytes` bytes asks for the lines 16 KiB further on; measured
// best among 0.5-32 KiB (benchmarks/bench_kernels.py). Prefetches never fault.
constexpr int kPrefetchDistance = 16384;
template <size_t Bytes>
inline void prefetch_ahead(const void* p) {
    const char* q = static_cast<const char*>(p) + kPrefetchDistance;
    for (size_t off = 0; off < Bytes; off += 64) _mm_prefetch(q + off, _MM_HINT_T0);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Scales for one 32-element group made of two 16-element sub-blocks.
inline __m256i scale_pair(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

float dot_f32(int64_t n, const void* w, const void* a) {
    const float* x = static_cast<const float*>(w);
    const float* y = static_cast<const float*>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; ++i) sum += x[i] * y[i];
    return sum;
}

inline __m256 load_f16(const fp16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load_bf16(const bf16_t* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

template <__m256 (*Load)(const uint16_t*), float (*Scalar)(uint16_t)>
float dot_half(int64_t n, const void* w, const void* a) {
    const uint16_t* x = static_cast<const uint16_t*>(w);
    const uint16_t* y = static_cast<const uint16_t*>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(Load(x + i), Load(y + i), s0);
        s1 = _mm256_fmadd_ps(Load(x + i + 8), Load(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(Load(x + i + 16), Load(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(Load(x + i + 24), Load(y + i + 24), s3);
    }
    // ggml's reduction order: (s0 + s2) + (s1 + s3), halves, then two hadds
    const __m256 r = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
    const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    const __m128 t1 = _mm_hadd_ps(t0, t0);
    float sum = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
    for (; i < n; ++i) sum += Scalar(x[i]) * Scalar(y[i]);
    return sum;
}
float f16_scalar(uint16_t h) { return fp16_to_fp32(h); }
float bf16_scalar(uint16_t h) { return bf16_to_fp32(h); }

// Four dot products of 16-bit rows sharing one operand: four weight rows
// against one activation row (vec_dot4), or one weight row against four
// activation rows (acts4, prefill). Each output keeps dot_half's four running
// sums over the same lanes in the same order, computed one sum at a time for
// all four outputs (so a shared load converts once), then reduced as dot_half
// reduces them: the results equal dot_half bit for bit.
template <__m256 (*Load)(const uint16_t*), float (*Scalar)(uint16_t)>
void dot_half_4(int64_t n, const uint16_t* shared, const uint16_t* const rows[4], float* out, int64_t out_stride) {
    const int64_t nv = n / 32 * 32;
    __m256 s[4][4];  // [output][running sum]
    for (int part = 0; part < 4; ++part) {
        const int64_t off = part * 8;
        __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps(), c3 = _mm256_setzero_ps();
        for (int64_t i = off; i < nv; i += 32) {
            const __m256 v = Load(shared + i);
            c0 = _mm256_fmadd_ps(v, Load(rows[0] + i), c0);
            c1 = _mm256_fmadd_ps(v, Load(rows[1] + i), c1);
            c2 = _mm256_fmadd_ps(v, Load(rows[2] + i), c2);
            c3 = _mm256_fmadd_ps(v, Load(rows[3] + i), c3);
        }
        s[0][part] = c0;
        s[1][part] = c1;
        s[2][part] = c2;
        s[3][part] = c3;
    }
    for (int j = 0; j < 4; ++j) {
        const __m256 r = _mm256_add_ps(_mm256_add_ps(s[j][0], s[j][2]), _mm256_add_ps(s[j][1], s[j][3]));
        const __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
        const __m128 t1 = _mm_hadd_ps(t0, t0);
        float sum = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
        for (int64_t i = nv; i < n; ++i) sum += Scalar(rows[j][i]) * Scalar(shared[i]);
        out[j * out_stride] = sum;
    }
}

template <__m256 (*Load)(const uint16_t*), float (*Scalar)(uint16_t)>
void dot4_half(int64_t n, const void* w, size_t w_stride, const void* a, float* out) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint16_t* rows[4];
    for (int j = 0; j < 4; ++j) rows[j] = reinterpret_cast<const uint16_t*>(wb + j * w_stride);
    dot_half_4<Load, Scalar>(n, static_cast<const uint16_t*>(a), rows, out, 1);
}

template <__m256 (*Load)(const uint16_t*), float (*Scalar)(uint16_t)>
void dot_half_acts4(int64_t n, const void* w, const void* a, size_t a_stride, float* out, int64_t out_stride) {
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    const uint16_t* rows[4];
    for (int j = 0; j < 4; ++j) rows[j] = reinterpret_cast<const uint16_t*>(ab + j * a_stride);
    dot_half_4<Load, Scalar>(n, static_cast<const uint16_t*>(w), rows, out, out_stride);
}

// Q4_0 as (u - 8) * y with u the unsigned nibble: maddubs(u, y) - maddubs(8, y)
// gives the same 16-bit pair sums as the signed product, and the second term
// depends on the activation only, so the 4-row kernel computes it once.
inline __m256 q4_0_block(const block_q4_0& x, __m256i y, __m256i corr, float dy, __m256 acc) {
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(nibbles32(x.qs), y), corr);
    const __m256 d = _mm256_set1_ps(h2f(x.d) * dy);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1))), acc);
}

float dot_q4_0(int64_t n, const void* w, const void* a) {
    const block_q4_0* x = static_cast<const block_q4_0*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        const __m256i yq = load256(y[i].qs);
        acc = q4_0_block(x[i], yq, _mm256_maddubs_epi16(eight, yq), h2f(y[i].d), acc);
    }
    return hsum(acc);
}

void dot4_q4_0(int64_t n, const void* w, size_t stride, const void* a, float* out) {
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    const uint8_t* base = static_cast<const uint8_t*>(w);
    const block_q4_0* x0 = reinterpret_cast<const block_q4_0*>(base);
    const block_q4_0* x1 = reinterpret_cast<const block_q4_0*>(base + stride);
    const block_q4_0* x2 = reinterpret_cast<const block_q4_0*>(base + 2 * stride);
    const block_q4_0* x3 = reinterpret_cast<const block_q4_0*>(base + 3 * stride);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        prefetch_ahead<sizeof(x0[i])>(&x0[i]);
        prefetch_ahead<sizeof(x1[i])>(&x1[i]);
        prefetch_ahead<sizeof(x2[i])>(&x2[i]);
        prefetch_ahead<sizeof(x3[i])>(&x3[i]);
        const __m256i yq = load256(y[i].qs);
        const __m256i corr = _mm256_maddubs_epi16(eight, yq);
        const float dy = h2f(y[i].d);
        acc0 = q4_0_block(x0[i], yq, corr, dy, acc0);
        acc1 = q4_0_block(x1[i], yq, corr, dy, acc1);
        acc2 = q4_0_block(x2[i], yq, corr, dy, acc2);
        acc3 = q4_0_block(x3[i], yq, corr, dy, acc3);
    }
    out[0] = hsum(acc0);
    out[1] = hsum(acc1);
    out[2] = hsum(acc2);
    out[3] = hsum(acc3);
}

// Packed Q4_0/Q4_1 row groups (repack.h). Lane r of every register is row r:
// chunk c's low nibbles meet activation bytes 4c..4c+3 (broadcast), its high
// nibbles bytes 16+4c..16+4c+3. The 16-bit pair sums of all 8 products stay
// below 8 * 2 * 15 * 127 = 30480, so they are added as int16 before widening.
inline __m256i bcast4(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

inline __m256i q4x8_sums(const uint8_t* qs, const int8_t* y) {
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i s = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
        const __m256i bits = load256(qs + 32 * c);
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(bits, m4), bcast4(y + 4 * c)));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                                     bcast4(y + 16 + 4 * c)));
    }
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
}

void dot8_q4_0(int64_t n, const void* group, const void* a, const int32_t* a_sums, float* out) {
    const block_q4_0x8* x = static_cast<const block_q4_0x8*>(group);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        prefetch_ahead<sizeof(x[i])>(x + i);
        // the -8 offset: subtract 8 * sum(y), the same for all 8 rows
        const __m256i isum = _mm256_sub_epi32(q4x8_sums(x[i].qs, y[i].qs), _mm256_set1_epi32(8 * a_sums[i]));
        const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].d))),
                                       _mm256_set1_ps(h2f(y[i].d)));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum), acc);
    }
    _mm256_storeu_ps(out, acc);
}

void dot8_q4_1(int64_t n, const void* group, const void* a, const int32_t*, float* out) {
    const block_q4_1x8* x = static_cast<const block_q4_1x8*>(group);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].d))),
                                       _mm256_set1_ps(h2f(y[i].d)));
        const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].m)));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(q4x8_sums(x[i].qs, y[i].qs)), acc);
        acc = _mm256_fmadd_ps(m, _mm256_set1_ps(h2f(y[i].s)), acc);
    }
    _mm256_storeu_ps(out, acc);
}

float dot_q4_1(int64_t n, const void* w, const void* a) {
    const block_q4_1* x = static_cast<const block_q4_1*>(w);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        summs += h2f(x[i].m) * h2f(y[i].s);
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        acc = _mm256_fmadd_ps(d, dot_us8(nibbles32(x[i].qs), load256(y[i].qs)), acc);
    }
    return hsum(acc) + summs;
}

float dot_q5_0(int64_t n, const void* w, const void* a) {
    const block_q5_0* x = static_cast<const block_q5_0*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        // (nibble | hbit << 4) - 16 == nibble | (hbit ? 0 : 0xf0) as a signed byte
        const __m256i hi = _mm256_andnot_si256(bits32(x[i].qh), _mm256_set1_epi8((char)0xf0));
        const __m256i qx = _mm256_or_si256(nibbles32(x[i].qs), hi);
        acc = _mm256_fmadd_ps(d, dot_s8(qx, load256(y[i].qs)), acc);
    }
    return hsum(acc);
}

// dot_q5_0 for four activation rows: the same per-lane operations, in the
// same order, for each row (so each result equals dot_q5_0's bit for bit).
void dot_q5_0_acts4(int64_t n, const void* w, const void* a, size_t a_stride, float* out, int64_t out_stride) {
    const block_q5_0* x = static_cast<const block_q5_0*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const float dx = h2f(x[i].d);
        const __m256i hi = _mm256_andnot_si256(bits32(x[i].qh), _mm256_set1_epi8((char)0xf0));
        const __m256i qx = _mm256_or_si256(nibbles32(x[i].qs), hi);
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        for (int j = 0; j < 4; ++j) {
            const block_q8_0* y = reinterpret_cast<const block_q8_0*>(ab + j * a_stride) + i;
            const __m256 d = _mm256_set1_ps(dx * h2f(y->d));
            acc[j] = _mm256_fmadd_ps(d, dot_us8(ax, _mm256_sign_epi8(load256(y->qs), qx)), acc[j]);
        }
    }
    for (int j = 0; j < 4; ++j) out[j * out_stride] = hsum(acc[j]);
}

float dot_q5_1(int64_t n, const void* w, const void* a) {
    const block_q5_1* x = static_cast<const block_q5_1*>(w);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        summs += h2f(x[i].m) * h2f(y[i].s);
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        const __m256i hi = _mm256_and_si256(bits32(x[i].qh), _mm256_set1_epi8(0x10));
        const __m256i qx = _mm256_or_si256(nibbles32(x[i].qs), hi);
        acc = _mm256_fmadd_ps(d, dot_us8(qx, load256(y[i].qs)), acc);
    }
    return hsum(acc) + summs;
}

// Two accumulators over block pairs; the prefetch only pays when streaming
// weights (matvec), not when a row is re-read for several activation rows.
template <bool kPrefetch>
inline float dot_q8_0_row(int64_t n, const block_q8_0* x, const block_q8_0* y) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const int64_t nb = n / QK8_0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        if constexpr (kPrefetch) prefetch_ahead<2 * sizeof(x[i])>(&x[i]);
        const __m256 d0 = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        const __m256 d1 = _mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, dot_s8(load256(x[i].qs), load256(y[i].qs)), acc0);
        acc1 = _mm256_fmadd_ps(d1, dot_s8(load256(x[i + 1].qs), load256(y[i + 1].qs)), acc1);
    }
    for (; i < nb; ++i) {
        const __m256 d0 = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        acc0 = _mm256_fmadd_ps(d0, dot_s8(load256(x[i].qs), load256(y[i].qs)), acc0);
    }
    return hsum(_mm256_add_ps(acc0, acc1));
}

float dot_q8_0(int64_t n, const void* w, const void* a) {
    return dot_q8_0_row<true>(n, static_cast<const block_q8_0*>(w), static_cast<const block_q8_0*>(a));
}

// dot_q8_0 for four activation rows (the weight row stays in L1 across them).
void dot_q8_0_acts4(int64_t n, const void* w, const void* a, size_t a_stride, float* out, int64_t out_stride) {
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    for (int j = 0; j < 4; ++j)
        out[j * out_stride] = dot_q8_0_row<false>(n, static_cast<const block_q8_0*>(w),
                                                  reinterpret_cast<const block_q8_0*>(ab + j * a_stride));
}

float dot_iq4_nl(int64_t n, const void* w, const void* a) {
    const block_iq4_nl* x = static_cast<const block_iq4_nl*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kvalues_iq4nl)));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK4_NL; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        const __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        const __m256i qx = _mm256_shuffle_epi8(table, nibbles32(x[i].qs));
        acc = _mm256_fmadd_ps(d, dot_s8(qx, load256(y[i].qs)), acc);
    }
    return hsum(acc);
}

// K-quants: the integer sum of a 256-block is accumulated in 8 int32 lanes,
// then scaled once per block.

float dot_q2_K(int64_t n, const void* w, const void* a) {
    const block_q2_K* x = static_cast<const block_q2_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    __m256 acc = _mm256_setzero_ps();
    float acc_m = 0.0f;
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        int summs = 0;
        for (int j = 0; j < 16; ++j) summs += y[i].bsums[j] * (x[i].scales[j] >> 4);
        __m256i sumi = _mm256_setzero_si256();
        const int8_t* q8 = y[i].qs;
        for (int h = 0; h < 2; ++h) {
            const __m256i bits = load256(x[i].qs + 32 * h);
            for (int s = 0; s < 4; ++s, q8 += 32) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), m3);
                const int is = 8 * h + 2 * s;
                const __m256i p = _mm256_maddubs_epi16(q, load256(q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(x[i].scales[is] & 0x0f,
                                                                             x[i].scales[is + 1] & 0x0f)));
            }
        }
        const float dall = y[i].d * h2f(x[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dall), _mm256_cvtepi32_ps(sumi), acc);
        acc_m -= y[i].d * h2f(x[i].dmin) * (float)summs;
    }
    return hsum(acc) + acc_m;
}

float dot_q3_K(int64_t n, const void* w, const void* a) {
    const block_q3_K* x = static_cast<const block_q3_K*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    __m256 acc = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        prefetch_ahead<sizeof(x[i])>(&x[i]);
        int8_t sc[16];
        q3_K_unpack_scales(x[i].scales, sc);
        // values are (low2 + 4*hbit) - 4: sum the unsigned part, remove 4 * bsums.
        int bias = 0;
        for (int j = 0; j < 16; ++j) bias += sc[j] * y[i].bsums[j];
        const __m256i hm = load256(x[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        const int8_t* q8 = y[i].qs;
        for (int h = 0; h < 2; ++h) {
            const __m256i bits = load256(x[i].qs + 32 * h);
            for (int s = 0; s < 4; ++s, q8 += 32) {
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * s), m3);
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), m1);
                const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 2));
                const int is = 8 * h + 2 * s;
                const __m256i p = _mm256_maddubs_epi16(q, load256(q8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[is], sc[is + 1])));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(4 * bias, 0, 0, 0, 0, 0, 0, 0));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * h2f(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

// Q4_K/Q5_K packed scales -> 8 scales (bytes 0..7) and 8 mins (bytes 8..15),
// unpacked with word operations instead of a per-byte loop.
inline __m128i k4_scales_mins_vec(const uint8_t* packed) {
    uint32_t u[4];
    std::memcpy(u, packed, 12);
    constexpr uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
    u[3] = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
    const uint32_t mins_lo = u[1] & m6;
    u[1] = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
    u[2] = mins_lo;
    u[0] &= m6;
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

// Sum over the 8 sub-blocks of mins[j] * (bsums[2j] + bsums[2j+1]), as 4 int32 lanes.
inline __m128i k4_min_terms(__m128i scales_mins, const int16_t* bsums) {
    const __m256i bs = load256(bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_unpackhi_epi64(scales_mins, scales_mins)), pairs);
}

// Broadcast 16-bit scale j of 8 (as int16 in both 128-bit lanes).
inline __m256i scale_at(__m256i scales16, int j) {
    const __m256i idx = _mm256_set1_epi16((short)(((2 * j + 1) << 8) | (2 * j)));
    return _mm256_shuffle_epi8(scales16, idx);
}

// Q4_K and Q5_K share everything but Q5_K's fifth bit, taken from qh (bit 2j of
// each byte for sub-block 2j, bit 2j+1 for sub-block 2j+1). R activation rows
// share each decoded weight block; every row goes through the same operations in
// the same order as with R = 1, so the results are identical bit for bit.
template <typename Block, int R, bool kPrefetch>
inline void q45_K_rows(int64_t n, const Block* x, const uint8_t* ab, size_t a_stride, float* out, int64_t out_stride) {
    constexpr bool kHighBit = std::is_same_v<Block, block_q5_K>;
    __m256 acc[R];
    __m128 acc_m[R];
    for (int r = 0; r < R; ++r) {
        acc[r] = _mm256_setzero_ps();
        acc_m[r] = _mm_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        if constexpr (kPrefetch) prefetch_ahead<sizeof(x[i])>(&x[i]);
        const block_q8_K* y[R];
        for (int r = 0; r < R; ++r) y[r] = reinterpret_cast<const block_q8_K*>(ab + r * a_stride) + i;
        const __m128i sm = k4_scales_mins_vec(x[i].scales);
        const float xdmin = h2f(x[i].dmin), xd = h2f(x[i].d);
        for (int r = 0; r < R; ++r)
            acc_m[r] = _mm_fmadd_ps(_mm_set1_ps(-y[r]->d * xdmin), _mm_cvtepi32_ps(k4_min_terms(sm, y[r]->bsums)),
                                    acc_m[r]);
        const __m128i sc16 = _mm_cvtepu8_epi16(sm);
        const __m256i scales = _mm256_set_m128i(sc16, sc16);
        __m256i sumi[R];
        for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i bits = load256(x[i].qs + 32 * j);
            __m256i lo = _mm256_and_si256(bits, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if constexpr (kHighBit) {
                const __m256i hbits = load256(x[i].qh);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), m1), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), m1), 4));
            }
            const __m256i slo = scale_at(scales, 2 * j), shi = scale_at(scales, 2 * j + 1);
            for (int r = 0; r < R; ++r) {
                const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(y[r]->qs + 64 * j)), slo);
                const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(y[r]->qs + 64 * j + 32)), shi);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pl, ph));
            }
        }
        for (int r = 0; r < R; ++r)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r]->d * xd), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < R; ++r) out[r * out_stride] = hsum(acc[r]) + hsum4(acc_m[r]);
}

template <typename Block>
float dot_q45_K(int64_t n, const void* w, const void* a) {
    float out;
    q45_K_rows<Block, 1, true>(n, static_cast<const Block*>(w), static_cast<const uint8_t*>(a), 0, &out, 0);
    return out;
}

template <typename Block>
void dot_q45_K_acts4(int64_t n, const void* w, const void* a, size_t a_stride, float* out, int64_t out_stride) {
    q45_K_rows<Block, 4, false>(n, static_cast<const Block*>(w), static_cast<const uint8_t*>(a), a_stride, out,
                                out_stride);
}

// Q6_K: values are q - 32 with q in [0, 64): sum the unsigned part, remove
// 32 * bsums. R activation rows share each decoded block, as for Q4_K.
template <int R, bool kPrefetch>
inline void q6_K_rows(int64_t n, const block_q6_K* x, const uint8_t* ab, size_t a_stride, float* out, int64_t out_stride) {
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        if constexpr (kPrefetch) prefetch_ahead<sizeof(x[i])>(&x[i]);
        const block_q8_K* y[R];
        for (int r = 0; r < R; ++r) y[r] = reinterpret_cast<const block_q8_K*>(ab + r * a_stride) + i;
        const int8_t* sc = x[i].scales;
        __m256i sumi[R];
        for (int r = 0; r < R; ++r) sumi[r] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h) {
            const __m256i b1 = load256(x[i].ql + 64 * h);
            const __m256i b2 = load256(x[i].ql + 64 * h + 32);
            const __m256i bh = load256(x[i].qh + 32 * h);
            const __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4)),
                _mm256_or_si256(_mm256_and_si256(b2, m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m3), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m3), 4)),
            };
            const int8_t* s = sc + 8 * h;
            for (int k = 0; k < 4; ++k) {
                const __m256i sp = scale_pair(s[2 * k], s[2 * k + 1]);
                for (int r = 0; r < R; ++r) {
                    const __m256i p = _mm256_maddubs_epi16(q[k], load256(y[r]->qs + 128 * h + 32 * k));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(p, sp));
                }
            }
        }
        const float xd = h2f(x[i].d);
        for (int r = 0; r < R; ++r) {
            int bias = 0;
            for (int j = 0; j < 16; ++j) bias += sc[j] * y[r]->bsums[j];
            sumi[r] = _mm256_sub_epi32(sumi[r], _mm256_setr_epi32(32 * bias, 0, 0, 0, 0, 0, 0, 0));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y[r]->d * xd), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) out[r * out_stride] = hsum(acc[r]);
}

float dot_q6_K(int64_t n, const void* w, const void* a) {
    float out;
    q6_K_rows<1, true>(n, static_cast<const block_q6_K*>(w), static_cast<const uint8_t*>(a), 0, &out, 0);
    return out;
}

void dot_q6_K_acts4(int64_t n, const void* w, const void* a, size_t a_stride, float* out, int64_t out_stride) {
    q6_K_rows<4, false>(n, static_cast<const block_q6_K*>(w), static_cast<const uint8_t*>(a), a_stride, out,
                        out_stride);
}

uint64_t read_words(const uint64_t* p, size_t n) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_epi64(s0, load256(p + i));
        s1 = _mm256_add_epi64(s1, load256(p + i + 4));
        s2 = _mm256_add_epi64(s2, load256(p + i + 8));
        s3 = _mm256_add_epi64(s3, load256(p + i + 12));
    }
    alignas(32) uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                       _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
    uint64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < n; ++i) sum += p[i];
    return sum;
}

void axpy_f32(int64_t n, float s, const float* x, float* y) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, _mm256_loadu_ps(y + i)));
    for (; i < n; ++i) y[i] = std::fma(x[i], s, y[i]);
}

inline void store_f16(fp16_t* p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, 0));
}

void mad_f16(int64_t n, float s, const fp16_t* x, fp16_t* y) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store_f16(y + i, _mm256_fmadd_ps(load_f16(x + i), vs, load_f16(y + i)));
    for (; i < n; ++i) y[i] = _cvtss_sh(std::fma(_cvtsh_ss(x[i]), s, _cvtsh_ss(y[i])), 0);
}

void scale_f16(int64_t n, float s, fp16_t* y) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store_f16(y + i, _mm256_mul_ps(load_f16(y + i), vs));
    for (; i < n; ++i) y[i] = _cvtss_sh(_cvtsh_ss(y[i]) * s, 0);
}

}  // namespace

void fill_avx2(KernelTable& t) {
    t.axpy_f32 = axpy_f32;
    t.mad_f16 = mad_f16;
    t.scale_f16 = scale_f16;
    t.read_words = read_words;
    auto set = [&](GgmlType ty, VecDotFn f) { t.vec_dot[static_cast<int>(ty)] = f; };
    set(GgmlType::F32, dot_f32);
    set(GgmlType::F16, dot_half<load_f16, f16_scalar>);
    set(GgmlType::BF16, dot_half<load_bf16, bf16_scalar>);
    t.vec_dot4[static_cast<int>(GgmlType::F16)] = dot4_half<load_f16, f16_scalar>;
    t.vec_dot4[static_cast<int>(GgmlType::BF16)] = dot4_half<load_bf16, bf16_scalar>;
    t.vec_dot_acts4[static_cast<int>(GgmlType::F16)] = dot_half_acts4<load_f16, f16_scalar>;
    t.vec_dot_acts4[static_cast<int>(GgmlType::BF16)] = dot_half_acts4<load_bf16, bf16_scalar>;
    set(GgmlType::Q4_0, dot_q4_0);
    t.vec_dot4[static_cast<int>(GgmlType::Q4_0)] = dot4_q4_0;
    set(GgmlType::Q4_1, dot_q4_1);
    t.vec_dot8[static_cast<int>(GgmlType::Q4_0)] = dot8_q4_0;
    t.vec_dot8[static_cast<int>(GgmlType::Q4_1)] = dot8_q4_1;
    set(GgmlType::Q5_0, dot_q5_0);
    t.vec_dot_acts4[static_cast<int>(GgmlType::Q5_0)] = dot_q5_0_acts4;
    t.vec_dot_acts4[static_cast<int>(GgmlType::Q8_0)] = dot_q8_0_acts4;
    set(GgmlType::Q5_1, dot_q5_1);
    set(GgmlType::Q8_0, dot_q8_0);
    set(GgmlType::IQ4_NL, dot_iq4_nl);
    set(GgmlType::Q2_K, dot_q2_K);
    set(GgmlType::Q3_K, dot_q3_K);
    set(GgmlType::Q4_K, dot_q45_K<block_q4_K>);
    set(GgmlType::Q5_K, dot_q45_K<block_q5_K>);
    set(GgmlType::Q6_K, dot_q6_K);
    t.vec_dot_acts4[static_cast<int>(GgmlType::Q4_K)] = dot_q45_K_acts4<block_q4_K>;
    t.vec_dot_acts4[static_cast<int>(GgmlType::Q5_K)] = dot_q45_K_acts4<block_q5_K>;
    t.vec_dot_acts4[static_cast<int>(GgmlType::Q6_K)] = dot_q6_K_acts4;
}

}  // namespace pyllama
