// Row-interleaved weight layouts for matvec ("packed" weights).
//
// A plain Q4_0/Q4_1 row keeps each block's scale next to its 16 bytes of
// nibbles, so a SIMD dot product converts one scale per block per row. Packing
// interleaves 8 rows block by block: one 256-bit load then holds the same
// element group of 8 rows, the 8 scales convert in one instruction, and the
// integer sums of all 8 rows land in the 8 lanes of one register.
//
//   group g (rows 8g..8g+7), block i:                 Q4_0: 144 bytes
//   +-------------+-------------+------------------------------------------+
//   | d[8] fp16   | (Q4_1) m[8] | qs: chunk 0 | chunk 1 | chunk 2 | chunk 3 |
//   +-------------+-------------+------------------------------------------+
//   chunk c = 8 rows x 4 bytes: row r's plain qs bytes [4c, 4c+4), so its low
//   nibbles are elements 4c..4c+3 and its high nibbles 16+4c..16+4c+3.
//
// Only whole groups are packed; rows past the last multiple of 8 are read from
// the plain tensor. The packed copy holds exactly the plain bytes, reordered.
#pragma once

#include <cstddef>
#include <cstdint>

#include "block_formats.h"

namespace pyllama {

constexpr int kPackRows = 8;

struct block_q4_0x8 { fp16_t d[8]; uint8_t qs[128]; };
struct block_q4_1x8 { fp16_t d[8]; fp16_t m[8]; uint8_t qs[128]; };

// Bytes of one packed block of 8 rows, or 0 when the type has no packed layout.
size_t packed_block_bytes(GgmlType type);
// Bytes of the packed copy of an (n_rows, n_cols) tensor (0 when not packable).
size_t packed_bytes(GgmlType type, int64_t n_rows, int64_t n_cols);
// Pack the whole groups of `src` (rows `row_stride` bytes apart) into dst.
void pack_rows(GgmlType type, const void* src, size_t row_stride, int64_t n_rows, int64_t n_cols, void* dst);

// Sums of the int8 values of each Q8_0/Q8_1 block of an n-element activation
// row (the packed Q4_0 kernel removes its -8 offset with them).
void act_block_sums(GgmlType act_type, const void* act, int64_t n, int32_t* out);

}  // namespace pyllama
