// GGML block formats: the on-disk layout of every weight type we read, and
// the 8-bit activation formats the integer dot products consume.
//
// Layouts are byte-for-byte those of ggml (ggml-common.h); a tensor row of
// K elements is K / block_size consecutive blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace pyllama {

// ggml type ids as stored in GGUF tensor infos.
enum class GgmlType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8,
    Q8_1 = 9, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14,
    Q8_K = 15, IQ4_NL = 20, BF16 = 30,
};

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32,
              QK8_1 = 32, QK4_NL = 32, QK_K = 256, K_SCALE_SIZE = 12;

using fp16_t = uint16_t;
using bf16_t = uint16_t;

struct block_q4_0 { fp16_t d; uint8_t qs[QK4_0 / 2]; };
struct block_q4_1 { fp16_t d, m; uint8_t qs[QK4_1 / 2]; };
struct block_q5_0 { fp16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct block_q5_1 { fp16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct block_q8_0 { fp16_t d; int8_t qs[QK8_0]; };
// s = d * sum(qs): lets Q4_1/Q5_1 fold their offset m into one multiply.
struct block_q8_1 { fp16_t d, s; int8_t qs[QK8_1]; };
struct block_iq4_nl { fp16_t d; uint8_t qs[QK4_NL / 2]; };

// 16 sub-blocks of 16: scales low nibble, mins high nibble.
struct block_q2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; fp16_t d, dmin; };
// 2 low bits in qs, high bit in hmask, 16 six-bit signed scales packed in 12 bytes.
struct block_q3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; fp16_t d; };
// 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes.
struct block_q4_K { fp16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct block_q5_K { fp16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
// 16 sub-blocks of 16 with int8 scales; values are 6 bits minus 32.
struct block_q6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; fp16_t d; };
// Activations for K-quant dot products; bsums are sums of 16 consecutive qs.
struct block_q8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(block_q4_0) == 18, "q4_0");
static_assert(sizeof(block_q4_1) == 20, "q4_1");
static_assert(sizeof(block_q5_0) == 22, "q5_0");
static_assert(sizeof(block_q5_1) == 24, "q5_1");
static_assert(sizeof(block_q8_0) == 34, "q8_0");
static_assert(sizeof(block_q8_1) == 36, "q8_1");
static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl");
static_assert(sizeof(block_q2_K) == 84, "q2_K");
static_assert(sizeof(block_q3_K) == 110, "q3_K");
static_assert(sizeof(block_q4_K) == 144, "q4_K");
static_assert(sizeof(block_q5_K) == 176, "q5_K");
static_assert(sizeof(block_q6_K) == 210, "q6_K");
static_assert(sizeof(block_q8_K) == 292, "q8_K");

// The block formats, each named once: for_each_block_format(visit) calls
// visit(type, name, vec_dot_type, tag) per format, where the tag's type says
// how the format scales its values:
template <typename B, int kValues>
struct SingleScale {  // one scale per block of kValues (Q4_1/Q5_1: and an offset)
    using Block = B;
    static constexpr int values = kValues;
};
template <typename B>
struct SubBlocks {  // QK_K values in sub-blocks, each with its own scale (and min)
    using Block = B;
    static constexpr int values = QK_K;
};

template <typename Visit>
void for_each_block_format(Visit&& visit) {
    visit(GgmlType::Q4_0, "q4_0", GgmlType::Q8_0, SingleScale<block_q4_0, QK4_0>{});
    visit(GgmlType::Q4_1, "q4_1", GgmlType::Q8_1, SingleScale<block_q4_1, QK4_1>{});
    visit(GgmlType::Q5_0, "q5_0", GgmlType::Q8_0, SingleScale<block_q5_0, QK5_0>{});
    visit(GgmlType::Q5_1, "q5_1", GgmlType::Q8_1, SingleScale<block_q5_1, QK5_1>{});
    visit(GgmlType::Q8_0, "q8_0", GgmlType::Q8_0, SingleScale<block_q8_0, QK8_0>{});
    visit(GgmlType::Q8_1, "q8_1", GgmlType::Q8_1, SingleScale<block_q8_1, QK8_1>{});
    visit(GgmlType::IQ4_NL, "iq4_nl", GgmlType::Q8_0, SingleScale<block_iq4_nl, QK4_NL>{});
    visit(GgmlType::Q8_K, "q8_K", GgmlType::Q8_K, SingleScale<block_q8_K, QK_K>{});
    visit(GgmlType::Q2_K, "q2_K", GgmlType::Q8_K, SubBlocks<block_q2_K>{});
    visit(GgmlType::Q3_K, "q3_K", GgmlType::Q8_K, SubBlocks<block_q3_K>{});
    visit(GgmlType::Q4_K, "q4_K", GgmlType::Q8_K, SubBlocks<block_q4_K>{});
    visit(GgmlType::Q5_K, "q5_K", GgmlType::Q8_K, SubBlocks<block_q5_K>{});
    visit(GgmlType::Q6_K, "q6_K", GgmlType::Q8_K, SubBlocks<block_q6_K>{});
}
template <typename Tag>
constexpr bool kIsSubBlocks = std::is_same_v<Tag, SubBlocks<typename Tag::Block>>;

// Q8_1 and Q8_K only ever hold activations: no weight format dots with them.
template <typename Block>
constexpr bool kActivationOnly = std::is_same_v<Block, block_q8_1> || std::is_same_v<Block, block_q8_K>;

// The non-linear 4-bit codebook of IQ4_NL.
constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

struct TypeTraits {
    const char* name;
    int block_size;      // elements per block
    size_t type_size;    // bytes per block
    GgmlType vec_dot_type;  // activation format of the dot product
};

// nullptr when the type is unknown to us.
const TypeTraits* type_traits(uint32_t type);
inline size_t row_size(GgmlType t, int64_t n) {
    const TypeTraits* tr = type_traits(static_cast<uint32_t>(t));
    return tr->type_size * (size_t)(n / tr->block_size);
}

// Exact IEEE half <-> float conversions (portable, no F16C).
inline float fp16_to_fp32(fp16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do { mant <<= 1; ++e; } while (!(mant & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even, as F16C's vcvtps2ph with rounding mode 0.
inline fp16_t fp32_to_fp16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    const uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) return (fp16_t)(sign | 0x7e00);          // NaN
    if (ax >= 0x477ff000) return (fp16_t)(sign | 0x7c00);         // overflow -> inf
    if (ax < 0x38800000) {                                         // subnormal half
        if (ax < 0x33000000) return (fp16_t)sign;                  // underflow
        const uint32_t e = ax >> 23;
        const uint32_t m = (ax & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - e;  // m * 2^(e-150) in units of 2^-24
        const uint32_t rem = m & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        uint32_t h = m >> shift;
        if (rem > half || (rem == half && (h & 1))) ++h;
        return (fp16_t)(sign | h);
    }
    uint32_t h = ((ax >> 13) - ((127 - 15) << 10));
    const uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
    return (fp16_t)(sign | h);
}

inline float bf16_to_fp32(bf16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Same rounding as ggml_compute_fp32_to_bf16 (nearest even, quiet NaN).
inline bf16_t fp32_to_bf16(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (bf16_t)((x >> 16) | 64);
    return (bf16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

}  // namespace pyllama
