// Portable dequantization of every block format. Compiled with
// -ffp-contract=off: the multiply-then-add order must round exactly as ggml
// (and gguf.quants) do, so no fused multiply-adds.
#include <cstring>

#include "block_values.h"
#include "kernels.h"

namespace pyllama {
namespace {

void dequant_f32(const void* src, float* y, int64_t n) { std::memcpy(y, src, n * sizeof(float)); }

template <typename T, float (*Widen)(T)>
void dequant_widen(const void* src, float* y, int64_t n) {
    const T* x = static_cast<const T*>(src);
    for (int64_t i = 0; i < n; ++i) y[i] = Widen(x[i]);
}

// y = d * value (+ m, the offset of Q4_1/Q5_1).
template <typename Block, int kValues>
void dequant_single_scale(const void* src, float* y, int64_t n) {
    const Block* x = static_cast<const Block*>(src);
    int8_t buf[kValues];
    for (int64_t i = 0; i < n / kValues; ++i, y += kValues) {
        const int8_t* q = block_values(x[i], buf);
        const float d = scale_f32(x[i].d);
        if constexpr (kHasOffset<Block>) {
            const float m = fp16_to_fp32(x[i].m);
            for (int j = 0; j < kValues; ++j) y[j] = d * (float)q[j] + m;
        } else {
            for (int j = 0; j < kValues; ++j) y[j] = d * (float)q[j];
        }
    }
}

// Sub-block s: y = (d * scale[s]) * value (- dmin * min[s]).
template <typename Block>
void dequant_sub_blocks(const void* src, float* y, int64_t n) {
    constexpr int kSub = kSubBlock<Block>, kN = QK_K / kSub;
    const Block* x = static_cast<const Block*>(src);
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; ++i) {
        block_values(x[i], q);
        const float d = fp16_to_fp32(x[i].d);
        int sc[kN], mn[kN];
        sub_scales(x[i], sc, mn);
        for (int s = 0; s < kN; ++s, y += kSub) {
            const int8_t* qs = q + kSub * s;
            const float dl = d * (float)sc[s];
            if constexpr (kHasSubMins<Block>) {
                const float ml = fp16_to_fp32(x[i].dmin) * (float)mn[s];
                for (int l = 0; l < kSub; ++l) y[l] = dl * (float)qs[l] - ml;
            } else {
                for (int l = 0; l < kSub; ++l) y[l] = dl * (float)qs[l];
            }
        }
    }
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

void q3_K_unpack_scales(const uint8_t* packed, int8_t* out) {
    for (int j = 0; j < 16; ++j) {
        const int lo = (j < 8 ? packed[j] : packed[j - 8] >> 4) & 0x0f;
        const int hi = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

void fill_dequantize_generic(KernelTable& t) {
    t.dequantize[static_cast<int>(GgmlType::F32)] = dequant_f32;
    t.dequantize[static_cast<int>(GgmlType::F16)] = dequant_widen<fp16_t, fp16_to_fp32>;
    t.dequantize[static_cast<int>(GgmlType::BF16)] = dequant_widen<bf16_t, bf16_to_fp32>;
    for_each_block_format([&](GgmlType type, const char*, GgmlType, auto tag) {
        using Tag = decltype(tag);
        if constexpr (kIsSubBlocks<Tag>)
            t.dequantize[static_cast<int>(type)] = dequant_sub_blocks<typename Tag::Block>;
        else
            t.dequantize[static_cast<int>(type)] = dequant_single_scale<typename Tag::Block, Tag::values>;
    });
}

}  // namespace pyllama
