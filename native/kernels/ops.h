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
          float freq_base, float freq_scale, bool neox, const float* freq_factors = nullptr);

// The same rotation in two steps, sharing the angles across heads and layers:
// cs (n_tokens, n_rot) holds cos, sin of each pair's angle for each token.
// freq_factors (n_rot/2, may be null) divide each pair's angle (Llama 3.1 rope_freqs).
void rope_angles(const int32_t* pos, int64_t n_tokens, int64_t n_rot, float freq_base, float freq_scale, float* cs,
                 const float* freq_factors = nullptr);
void rope_apply(float* x, const float* cs, int64_t n_tokens, int64_t n_head, int64_t head_dim, int64_t n_rot,
                bool neox);

// Row softmax of (x * scale), optionally soft-capped: cap * tanh(x * scale / cap).
void softmax(const float* x, float* y, int64_t rows, int64_t n, float scale, float softcap);

void silu(const float* x, float* y, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);
void gelu_erf(const float* x, float* y, int64_t n);
// y = act(gate) * up
void swiglu(const float* gate, const float* up, float* y, int64_t n);
void geglu(const float* gate, const float* up, float* y, int64_t n);
// GELU-tanh as ggml's CPU backend computes it (an F16 lookup table), which
// the models use so their activations round like llama.cpp's.
void gelu_ggml(const float* x, float* y, int64_t n);
void geglu_ggml(const float* gate, const float* up, float* y, int64_t n);
void add(const float* a, const float* b, float* y, int64_t n);
void mul(const float* a, const float* b, float* y, int64_t n);
void scale(const float* a, float s, float* y, int64_t n);

}  // namespace pyllama
