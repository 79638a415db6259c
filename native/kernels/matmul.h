// Y = X · Wᵀ for a weight matrix kept in its GGUF block format.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"
#include "threadpool.h"

namespace pyllama {

struct WeightView {
    const void* data;     // (n_rows, row_bytes) in `type` blocks
    GgmlType type;
    int64_t n_rows;       // N
    int64_t n_cols;       // K, a multiple of the block size
    size_t row_stride;    // bytes between rows
    // Optional packed copy (repack.h) of rows [0, 8 * (n_rows / 8)); when set and
    // the kernel table has a packed kernel for `type`, those rows are read from it.
    const void* packed = nullptr;
};

// Y[M,N] = X[M,K] · W[N,K]ᵀ.  X: (M, K) float rows `x_stride` floats apart;
// Y: (M, N) float rows `y_stride` floats apart.
//
// Work is split across threads by output columns (weight rows) only: every
// output element is one dot product with a fixed reduction order, so results
// do not depend on M, on the tiling or on the thread count.
void matmul(const WeightView& w, const float* x, int64_t m, int64_t x_stride, float* y,
            int64_t y_stride, ThreadPool& pool, const KernelTable& kt);

// Dequantize rows `ids` of a table (e.g. token embeddings) into out (n_ids, K).
void get_rows(const WeightView& w, const int32_t* ids, int64_t n_ids, float* out, const KernelTable& kt);

}  // namespace pyllama
