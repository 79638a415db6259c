// Element-wise and row-wise transformer ops on float32 rows.
// Shapes are (rows, n) row-major unless stated; every op may run in place.
#pragma once

#include <cstdint>

#include "block_formats.h"
#include "threadpool.h"

namespace pyllama {

// y = x / sqrt(mean(x^2) + eps) [* w]   (w may be null)
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);
// y = (x - mean) / sqrt(var + eps) [* w] [+ b]
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t n, float eps);

// Rotary embedding in place on x: (n_tokens, n_head, head_dim), pos: (n_tokens).
// The first n_rot dims of each head rotate; neox pairs (i, i + n_rot/2),
// normal pairs (2i, 2i + 1). theta_i = pos * freq_scale * base^(-2i/n_rot).
void rope(float* x, const int32_t* pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, int64_t n_rot,
          float freq_base, float freq_scale, bool neox);

// Row softmax of (x * scale), optionally soft-capped: cap * tanh(x * scale / cap).
void softmax(const float* x, float* y, int64_t rows, int64_t n, float scale, float softcap);

void silu(const float* x, float* y, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);
void gelu_erf(const float* x, float* y, int64_t n);
// y = act(gate) * up
void swiglu(const float* gate, const float* up, float* y, int64_t n);
void geglu(const float* gate, const float* up, float* y, int64_t n);
void add(const float* a, const float* b, float* y, int64_t n);
void mul(const float* a, const float* b, float* y, int64_t n);
void scale(const float* a, float s, float* y, int64_t n);

struct AttentionArgs {
    const float* q;          // (n_tokens, n_head, head_dim)
    const fp16_t* k;         // (n_kv, n_head_kv, head_dim)
    const fp16_t* v;         // (n_kv, n_head_kv, head_dim)
    const int32_t* q_pos;    // (n_tokens)
    const int32_t* q_seq;    // (n_tokens) sequence id of each query token, < 64
    const int32_t* kv_pos;   // (n_kv) position of each cell, < 0 = empty
    const uint64_t* kv_seq;  // (n_kv) bit set of the sequences holding each cell
    float* out;              // (n_tokens, n_head, head_dim)
    int64_t n_tokens, n_kv, n_head, n_head_kv, head_dim;
    float scale;             // usually 1/sqrt(head_dim)
    float softcap;           // 0 = off
    int32_t window;          // sliding window: keep cells with q_pos - kv_pos < window; 0 = off
};

// Causal attention over an F16 KV store with grouped-query heads: a query
// token sees the cells of its sequence at positions <= its own (and inside
// the window). Split across threads by (token, head): one output element is
// always reduced in the same order.
void attention(const AttentionArgs& a, ThreadPool& pool);

}  // namespace pyllama
