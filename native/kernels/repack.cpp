#include "repack.h"

#include <cstring>

namespace pyllama {

size_t packed_block_bytes(GgmlType type) {
    switch (type) {
        case GgmlType::Q4_0: return sizeof(block_q4_0x8);
        case GgmlType::Q4_1: return sizeof(block_q4_1x8);
        default: return 0;
    }
}

size_t packed_bytes(GgmlType type, int64_t n_rows, int64_t n_cols) {
    return packed_block_bytes(type) * (size_t)(n_rows / kPackRows) * (size_t)(n_cols / 32);
}

namespace {

// The 4-byte transpose shared by both layouts: chunk c, row r <- row r's qs[4c..4c+4).
void interleave_qs(const uint8_t* const rows_qs[8], uint8_t* dst) {
    for (int c = 0; c < 4; ++c)
        for (int r = 0; r < 8; ++r) std::memcpy(dst + 32 * c + 4 * r, rows_qs[r] + 4 * c, 4);
}

}  // namespace

void pack_rows(GgmlType type, const void* src, size_t row_stride, int64_t n_rows, int64_t n_cols, void* dst) {
    const int64_t nb = n_cols / 32;
    const uint8_t* base = static_cast<const uint8_t*>(src);
    for (int64_t g = 0; g < n_rows / kPackRows; ++g) {
        const uint8_t* rows[8];
        for (int r = 0; r < 8; ++r) rows[r] = base + (size_t)(kPackRows * g + r) * row_stride;
        for (int64_t i = 0; i < nb; ++i) {
            const uint8_t* qs[8];
            if (type == GgmlType::Q4_0) {
                block_q4_0x8& out = static_cast<block_q4_0x8*>(dst)[g * nb + i];
                for (int r = 0; r < 8; ++r) {
                    const block_q4_0& b = reinterpret_cast<const block_q4_0*>(rows[r])[i];
                    out.d[r] = b.d;
                    qs[r] = b.qs;
                }
                interleave_qs(qs, out.qs);
            } else if (type == GgmlType::Q4_1) {
                block_q4_1x8& out = static_cast<block_q4_1x8*>(dst)[g * nb + i];
                for (int r = 0; r < 8; ++r) {
                    const block_q4_1& b = reinterpret_cast<const block_q4_1*>(rows[r])[i];
                    out.d[r] = b.d;
                    out.m[r] = b.m;
                    qs[r] = b.qs;
                }
                interleave_qs(qs, out.qs);
            }
        }
    }
}

void act_block_sums(GgmlType act_type, const void* act, int64_t n, int32_t* out) {
    const size_t block = act_type == GgmlType::Q8_1 ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t qs_offset = block - 32;
    const uint8_t* p = static_cast<const uint8_t*>(act);
    for (int64_t i = 0; i < n / 32; ++i) {
        const int8_t* qs = reinterpret_cast<const int8_t*>(p + (size_t)i * block + qs_offset);
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += qs[j];
        out[i] = sum;
    }
}

}  // namespace pyllama
