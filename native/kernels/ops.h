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

// RoPE with YaRN, as ggml_rope_ext computes it. Pair i's angle before scaling is
// theta_i = pos * base^(-2i/n_rot) / freq_factor_i; interpolated it is freq_scale * theta_i.
// ext_factor != 0 mixes the two per pair: ramp(i) = 1 - clamp((i - lo) / max(0.001, hi - lo), 0, 1)
// with [lo, hi] the correction dims of beta_fast and beta_slow for n_ctx_orig; angle =
// interp * (1 - ramp * ext) + theta * ramp * ext, and the magnitude is additionally
// multiplied by 1 + 0.1 ln(1 / freq_scale). cos and sin are scaled by attn_factor.
struct RopeParams {
    int64_t n_rot = 0;
    float freq_base = 10000.0f, freq_scale = 1.0f;
    float ext_factor = 0.0f, attn_factor = 1.0f, beta_fast = 32.0f, beta_slow = 1.0f;
    int32_t n_ctx_orig = 0;                 // <= 0: no YaRN mixing possible (ext_factor ignored)
    const float* freq_factors = nullptr;    // (n_rot/2) or null
};
// [lo, hi]: ggml_rope_yarn_corr_dims.
void rope_yarn_corr_dims(int64_t n_rot, int32_t n_ctx_orig, float freq_base, float beta_fast, float beta_slow,
                         float dims[2]);
// cs as rope_angles; unit = true leaves out the magnitude scaling (a pure rotation, for
// re-rotating cached K by a position delta).
void rope_angles_ext(const int32_t* pos, int64_t n_tokens, const RopeParams& rp, float* cs, bool unit = false);
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
