// The kernel table: per weight type, the dequantize and dot-product functions
// of one ISA level. Every entry has a portable generic implementation; the
// x86 variants override the entries they accelerate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "block_formats.h"

namespace pyllama {

enum class Isa : int { Generic = 0, Avx2 = 1, Avx512 = 2 };

// Dequantize n elements (a multiple of the block size) into dst.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
// Quantize n float activations into the type's vec_dot_type blocks.
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of n elements: one weight row (its own format) against one
// activation row already in the weight type's vec_dot_type.
using VecDotFn = float (*)(int64_t n, const void* w, const void* a);

// Four weight rows (w_stride bytes apart) against one activation row at once,
// sharing the activation loads. out[r] must equal VecDotFn on row r bit for bit.
using VecDot4Fn = void (*)(int64_t n, const void* w, size_t w_stride, const void* a, float* out);

// One weight row against four activation rows (a_stride bytes apart) at once,
// decoding the weight blocks once (prefill): out[j * out_stride] must equal
// VecDotFn on activation row j bit for bit.
using VecDotActs4Fn = void (*)(int64_t n, const void* w, const void* a, size_t a_stride, float* out,
                               int64_t out_stride);

// Eight weight rows packed as one row group (repack.h) against one activation
// row: out[r] is row r's dot product (same values as VecDotFn up to rounding).
// a_sums[i] is the sum of the int8 values of activation block i (act_block_sums),
// computed once per activation row; kernels whose formula needs no sums ignore it.
using VecDot8Fn = void (*)(int64_t n, const void* group, const void* a, const int32_t* a_sums, float* out);

// Attention's weighted sums of V rows, as ggml's CPU flash attention does them:
// y[i] += s * x[i] in F32, or with an F16 accumulator rounded after every
// fused multiply-add, and the F16 accumulator's rescaling y[i] = y[i] * s.
using AxpyF32Fn = void (*)(int64_t n, float s, const float* x, float* y);
using MadF16Fn = void (*)(int64_t n, float s, const fp16_t* x, fp16_t* y);
using ScaleF16Fn = void (*)(int64_t n, float s, fp16_t* y);

// Register-tiled prefill (gemm_avx2.cpp), for weight types whose dot product
// runs on F32 values (F16): PanelActFn lays one activation row out as the F32
// values the dot product sees, in the kernel's panel order (k floats, k a
// multiple of 32); GemmPanelFn multiplies nw weight rows (w_stride bytes apart)
// by na such panels (k floats apart): y[j * y_stride + r] equals VecDotFn on
// weight row r and activation row j bit for bit.
using PanelActFn = void (*)(const float* x, float* panel, int64_t k);
using GemmPanelFn = void (*)(int64_t k, const void* w, size_t w_stride, int64_t nw, const float* a, int64_t na,
                             float* y, int64_t y_stride);

// ggml's table GELU (ops.h gelu_ggml) over n values: y = table[f16(x)] inside
// (-10, 10), 0 below, x above, times up[i] when up is not null.
using GeluTableFn = void (*)(const float* table, const float* x, const float* up, float* y, int64_t n);

// Sum of n 64-bit words (reads memory as fast as the ISA allows; bandwidth probe).
using ReadWordsFn = uint64_t (*)(const uint64_t* p, size_t n);

constexpr int kMaxType = 40;

struct KernelTable {
    Isa isa;
    DequantizeFn dequantize[kMaxType] = {};
    QuantizeFn quantize[kMaxType] = {};  // indexed by the activation type
    VecDotFn vec_dot[kMaxType] = {};     // indexed by the weight type
    VecDot4Fn vec_dot4[kMaxType] = {};   // optional, indexed by the weight type
    VecDot8Fn vec_dot8[kMaxType] = {};   // packed row groups, for types with a packed layout
    VecDotActs4Fn vec_dot_acts4[kMaxType] = {};  // optional, indexed by the weight type
    PanelActFn panel_act[kMaxType] = {};     // optional, with gemm_panel; indexed by the weight type
    GemmPanelFn gemm_panel[kMaxType] = {};
    AxpyF32Fn axpy_f32 = nullptr;
    MadF16Fn mad_f16 = nullptr;
    ScaleF16Fn scale_f16 = nullptr;
    ReadWordsFn read_words = nullptr;
    GeluTableFn gelu_table = nullptr;  // optional
};

// The table of one level (levels this CPU cannot run are never returned:
// asking for one yields the best supported level below it).
const KernelTable& kernels_for(Isa isa);
// The table in use: the best level the CPU supports, capped by the
// PYLLAMA_ISA environment variable (generic | avx2 | avx512).
const KernelTable& kernels();
Isa best_supported_isa();
Isa active_isa();
const char* isa_name(Isa isa);

// Fillers, one per translation unit.
void fill_dequantize_generic(KernelTable& t);
void fill_quantize_generic(KernelTable& t);
void fill_quantize_store(KernelTable& t);
void fill_vec_dot_generic(KernelTable& t);
void fill_avx2(KernelTable& t);
void fill_gemm_avx2(KernelTable& t);
void fill_ops_avx2(KernelTable& t);
void fill_avx512(KernelTable& t);

// Block helpers shared by the generic and SIMD kernels.
// Q4_K/Q5_K: 8 six-bit scales and 8 six-bit mins from the 12 packed bytes.
void k4_scales_mins(const uint8_t* packed, uint8_t* scales, uint8_t* mins);
// Q3_K: the 16 signed scales (already minus 32).
void q3_K_unpack_scales(const uint8_t* packed, int8_t* out);

}  // namespace pyllama
