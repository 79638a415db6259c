// Multi-head attention of a batch of query tokens over stored K/V rows (the KV
// cache, or an encoder's own batch): which rows a token sees is the caller's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"
#include "threadpool.h"

namespace pyllama {

// One layer's K and V as stored in the cache (element types F32, F16 or Q8_0).
struct KvView {
    const uint8_t* k;  // (n_cells, n_head_kv, head_dim_k) in type_k
    const uint8_t* v;  // (n_cells, n_head_kv, head_dim_v) in type_v
    GgmlType type_k, type_v;
    size_t k_head_bytes, v_head_bytes;  // one (cell, head) row
    size_t k_cell_bytes, v_cell_bytes;  // one cell (all heads)
};

struct AttentionArgs {
    const float* q;         // (n_tokens, n_head, head_dim_k)
    KvView kv;
    const int32_t* cells;   // visible cells: token t sees cells[begin[t], end[t]),
    const int64_t* begin;   //   a run sorted by position (kv_cache.h: visible_cells)
    const int64_t* end;     // (n_tokens)
    float* out;             // (n_tokens, n_head, head_dim_v)
    int64_t n_tokens, n_head, n_head_kv, head_dim_k, head_dim_v;
    float scale;            // usually 1/sqrt(head_dim_k)
    float softcap;          // 0 = off
    // ALiBi (optional): score += slope[h] * -|q_pos[t] - kv_pos[cell]|
    const float* alibi = nullptr;    // (n_head) slopes, or null
    const int32_t* q_pos = nullptr;  // (n_tokens)
    const int32_t* kv_pos = nullptr; // (cells) indexed by cell
};

// ALiBi slopes of n_head heads for a maximum bias (ggml's: 2^(-max_bias (h+1) / n)
// for the first n = 2^floor(log2 n_head) heads, odd powers of the half step after).
void alibi_slopes(int64_t n_head, float max_bias, float* out);

// Grouped-query attention: head h reads KV head h / (n_head / n_head_kv).
// The query row is converted to K's dot-product format (F16 for an F16
// cache), and the visible cells are visited once, in position order, with an
// online softmax. Work is split by (token, head), so each output element is
// reduced in one fixed order whatever the batch or the thread count.
void attention(const AttentionArgs& a, ThreadPool& pool, const KernelTable& kt);

}  // namespace pyllama
