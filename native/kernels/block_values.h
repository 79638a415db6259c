// How to read a block of each format: block_values() gives its values as int8
// in element order and, for the sub-block formats, sub_scales() the integer
// scale (and min) of each sub-block. The portable dequantize.cpp and vec_dot.cpp
// both decode through these, so a format's bit layout is written once. All of
// it is exact integer work: the float arithmetic stays in the kernels.
#pragma once

#include <cstring>
#include <type_traits>

#include "block_formats.h"
#include "kernels.h"

namespace pyllama {

template <typename Block, typename... Of>
constexpr bool kIsOneOf = (std::is_same_v<Block, Of> || ...);

// ---- single-scale formats: element j is d * value(j) (+ m) -----------------

// Q4_1 and Q5_1 add the block's offset m after scaling (and dot with Q8_1 activations).
template <typename Block>
constexpr bool kHasOffset = kIsOneOf<Block, block_q4_1, block_q5_1>;

// block_values(b, buf) returns the block's values as int8, in element order:
// the 8-bit formats' own qs, the others unpacked into buf (room for a block).

// The 4- and 5-bit formats: element j < 16 is the low nibble of qs[j],
// element j + 16 the high nibble; Q5_0/Q5_1 add bit j of qh as fifth bit.
inline void unpack_nibbles(const uint8_t* qs, int8_t* q) {
    for (int j = 0; j < 16; ++j) {
        q[j] = (int8_t)(qs[j] & 0x0f);
        q[j + 16] = (int8_t)(qs[j] >> 4);
    }
}
inline void add_fifth_bits(const uint8_t* qh, int8_t* q) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    for (int j = 0; j < 32; ++j) q[j] = (int8_t)(q[j] | ((h & (1u << j)) ? 16 : 0));
}
inline const int8_t* minus(int8_t* q, int offset) {
    for (int j = 0; j < 32; ++j) q[j] = (int8_t)(q[j] - offset);
    return q;
}

inline const int8_t* block_values(const block_q4_0& b, int8_t* q) {
    unpack_nibbles(b.qs, q);
    return minus(q, 8);
}
inline const int8_t* block_values(const block_q4_1& b, int8_t* q) {
    unpack_nibbles(b.qs, q);
    return q;
}
inline const int8_t* block_values(const block_q5_0& b, int8_t* q) {
    unpack_nibbles(b.qs, q);
    add_fifth_bits(b.qh, q);
    return minus(q, 16);
}
inline const int8_t* block_values(const block_q5_1& b, int8_t* q) {
    unpack_nibbles(b.qs, q);
    add_fifth_bits(b.qh, q);
    return q;
}
inline const int8_t* block_values(const block_iq4_nl& b, int8_t* q) {
    unpack_nibbles(b.qs, q);
    for (int j = 0; j < 32; ++j) q[j] = kvalues_iq4nl[q[j]];
    return q;
}
// The 8-bit formats (Q8_0, Q8_1, Q8_K) store their values as they are.
template <typename Block, typename = std::enable_if_t<kIsOneOf<Block, block_q8_0, block_q8_1, block_q8_K>>>
inline const int8_t* block_values(const Block& b, int8_t*) {
    return b.qs;
}

// The block scale as a float (F16 in most formats, F32 in Q8_K).
inline float scale_f32(fp16_t d) { return fp16_to_fp32(d); }
inline float scale_f32(float d) { return d; }

// ---- sub-block formats: QK_K values in sub-blocks with their own scales ---

// Values per sub-block: 32 for Q4_K and Q5_K, 16 for Q2_K, Q3_K and Q6_K.
template <typename Block>
constexpr int kSubBlock = kIsOneOf<Block, block_q4_K, block_q5_K> ? 32 : 16;
// Q2_K, Q4_K and Q5_K subtract dmin * min of the sub-block.
template <typename Block>
constexpr bool kHasSubMins = kIsOneOf<Block, block_q2_K, block_q4_K, block_q5_K>;

// Q2_K/Q3_K: each half of 128 values reads its 32 bytes of qs four times, 2
// bits at a time; Q3_K subtracts 4 where bit (value index / 32) of hmask[l] is clear.
template <typename Block>
inline const int8_t* unpack_two_bits(const Block& b, int8_t* q) {
    for (int half = 0; half < 2; ++half)
        for (int shift = 0; shift < 8; shift += 2)
            for (int l = 0; l < 32; ++l) {
                int v = (b.qs[32 * half + l] >> shift) & 3;
                if constexpr (std::is_same_v<Block, block_q3_K>)
                    v -= (b.hmask[l] >> (4 * half + shift / 2)) & 1 ? 0 : 4;
                q[128 * half + 16 * shift + l] = (int8_t)v;
            }
    return q;
}
inline const int8_t* block_values(const block_q2_K& b, int8_t* q) { return unpack_two_bits(b, q); }
inline const int8_t* block_values(const block_q3_K& b, int8_t* q) { return unpack_two_bits(b, q); }

// Q4_K and Q5_K share everything but Q5_K's fifth bit: sub-blocks 2j and 2j + 1
// are the low and high nibbles of qs[32j .. 32j + 32), and Q5_K takes bits 2j
// and 2j + 1 of qh[l] as their fifth bits.
template <typename Block>
inline const int8_t* unpack_q45_K(const Block& b, int8_t* q) {
    for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l) {
            int lo = b.qs[32 * j + l] & 0x0f, hi = b.qs[32 * j + l] >> 4;
            if constexpr (std::is_same_v<Block, block_q5_K>) {
                lo |= ((b.qh[l] >> (2 * j)) & 1) << 4;
                hi |= ((b.qh[l] >> (2 * j + 1)) & 1) << 4;
            }
            q[64 * j + l] = (int8_t)lo;
            q[64 * j + 32 + l] = (int8_t)hi;
        }
    return q;
}
inline const int8_t* block_values(const block_q4_K& b, int8_t* q) { return unpack_q45_K(b, q); }
inline const int8_t* block_values(const block_q5_K& b, int8_t* q) { return unpack_q45_K(b, q); }

// Q6_K: in each half of 128 values, quarter k takes its low 4 bits from nibble
// k / 2 of ql[32 * (k % 2) + l] and its high 2 from bits 2k of qh[l]; minus 32.
inline const int8_t* block_values(const block_q6_K& b, int8_t* q) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = b.ql + 64 * half;
        const uint8_t* qh = b.qh + 32 * half;
        for (int k = 0; k < 4; ++k)
            for (int l = 0; l < 32; ++l) {
                const int lo = (ql[32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
                q[128 * half + 32 * k + l] = (int8_t)((lo | ((qh[l] >> (2 * k)) & 3) << 4) - 32);
            }
    }
    return q;
}

// Integer scale (and, with kHasSubMins, min) of each of the QK_K / kSubBlock sub-blocks.
inline void sub_scales(const block_q2_K& b, int* sc, int* mn) {
    for (int s = 0; s < 16; ++s) {
        sc[s] = b.scales[s] & 0x0f;
        mn[s] = b.scales[s] >> 4;
    }
}
inline void sub_scales(const block_q3_K& b, int* sc, int*) {
    int8_t s8[16];
    q3_K_unpack_scales(b.scales, s8);
    for (int s = 0; s < 16; ++s) sc[s] = s8[s];
}
template <typename Block, typename = std::enable_if_t<kIsOneOf<Block, block_q4_K, block_q5_K>>>
inline void sub_scales(const Block& b, int* sc, int* mn) {
    uint8_t s8[8], m8[8];
    k4_scales_mins(b.scales, s8, m8);
    for (int s = 0; s < 8; ++s) {
        sc[s] = s8[s];
        mn[s] = m8[s];
    }
}
inline void sub_scales(const block_q6_K& b, int* sc, int*) {
    for (int s = 0; s < 16; ++s) sc[s] = b.scales[s];
}

}  // namespace pyllama
