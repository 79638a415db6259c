#include "ops.h"

#include "kernels.h"

#include <cmath>
#include <vector>

namespace pyllama {

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) sum += (double)(x[i] * x[i]);
        const float s = 1.0f / std::sqrt((float)(sum / (double)n) + eps);
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
        if (w)
            for (int64_t i = 0; i < n; ++i) y[i] *= w[i];
    }
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) sum += (double)x[i];
        const float mean = (float)(sum / (double)n);
        double var = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            const float v = x[i] - mean;
            y[i] = v;
            var += (double)(v * v);
        }
        const float s = 1.0f / std::sqrt((float)(var / (double)n) + eps);
        for (int64_t i = 0; i < n; ++i) y[i] *= s;
        if (w)
            for (int64_t i = 0; i < n; ++i) y[i] *= w[i];
        if (b)
            for (int64_t i = 0; i < n; ++i) y[i] += b[i];
    }
}

void rope_angles(const int32_t* pos, int64_t n_tokens, int64_t n_rot, float freq_base, float freq_scale, float* cs,
                 const float* freq_factors) {
    RopeParams rp;
    rp.n_rot = n_rot;
    rp.freq_base = freq_base;
    rp.freq_scale = freq_scale;
    rp.freq_factors = freq_factors;
    rope_angles_ext(pos, n_tokens, rp, cs);
}

void rope_yarn_corr_dims(int64_t n_rot, int32_t n_ctx_orig, float freq_base, float beta_fast, float beta_slow,
                         float dims[2]) {
    // the pair index whose wavelength fits n_ctx_orig / beta times in the original context
    auto corr_dim = [&](float beta) {
        return (float)n_rot * std::log((float)n_ctx_orig / (beta * 2.0f * (float)M_PI)) / (2.0f * std::log(freq_base));
    };
    dims[0] = std::fmax(0.0f, std::floor(corr_dim(beta_fast)));
    dims[1] = std::fmin((float)(n_rot - 1), std::ceil(corr_dim(beta_slow)));
}

void rope_angles_ext(const int32_t* pos, int64_t n_tokens, const RopeParams& rp, float* cs, bool unit) {
    const int64_t n_rot = rp.n_rot;
    const float theta_scale = std::pow(rp.freq_base, -2.0f / (float)n_rot);
    const bool yarn = rp.ext_factor != 0.0f && rp.n_ctx_orig > 0;
    float dims[2] = {0.0f, 0.0f};
    if (yarn) rope_yarn_corr_dims(n_rot, rp.n_ctx_orig, rp.freq_base, rp.beta_fast, rp.beta_slow, dims);
    float mscale = unit ? 1.0f : rp.attn_factor;
    if (yarn && !unit) mscale *= 1.0f + 0.1f * std::log(1.0f / rp.freq_scale);
    for (int64_t t = 0; t < n_tokens; ++t, cs += n_rot) {
        // Same iterative angle as ggml: theta_i = p * theta_scale^i.
        float theta = (float)pos[t];
        for (int64_t i = 0; i < n_rot / 2; ++i, theta *= theta_scale) {
            const float extrap = rp.freq_factors ? theta / rp.freq_factors[i] : theta;
            const float interp = rp.freq_scale * extrap;
            float th = interp;
            if (yarn) {
                const float y = ((float)i - dims[0]) / std::fmax(0.001f, dims[1] - dims[0]);
                const float mix = (1.0f - std::fmin(1.0f, std::fmax(0.0f, y))) * rp.ext_factor;
                th = interp * (1.0f - mix) + extrap * mix;
            }
            cs[2 * i] = std::cos(th) * mscale;
            cs[2 * i + 1] = std::sin(th) * mscale;
        }
    }
}

void rope_apply(float* x, const float* cs, int64_t n_tokens, int64_t n_head, int64_t head_dim, int64_t n_rot,
                bool neox) {
    for (int64_t t = 0; t < n_tokens; ++t, cs += n_rot) {
        for (int64_t h = 0; h < n_head; ++h) {
            float* v = x + (t * n_head + h) * head_dim;
            for (int64_t i = 0; i < n_rot / 2; ++i) {
                const float c = cs[2 * i], s = cs[2 * i + 1];
                const int64_t i0 = neox ? i : 2 * i;
                const int64_t i1 = neox ? i + n_rot / 2 : 2 * i + 1;
                const float a = v[i0], b = v[i1];
                v[i0] = a * c - b * s;
                v[i1] = a * s + b * c;
            }
        }
    }
}

void rope(float* x, const int32_t* pos, int64_t n_tokens, int64_t n_head, int64_t head_dim, int64_t n_rot,
          float freq_base, float freq_scale, bool neox, const float* freq_factors) {
    std::vector<float> cs((size_t)(n_tokens * n_rot));
    rope_angles(pos, n_tokens, n_rot, freq_base, freq_scale, cs.data(), freq_factors);
    rope_apply(x, cs.data(), n_tokens, n_head, head_dim, n_rot, neox);
}

void softmax(const float* x, float* y, int64_t rows, int64_t n, float scale, float softcap) {
    for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
        float mx = -INFINITY;
        for (int64_t i = 0; i < n; ++i) {
            float v = x[i] * scale;
            if (softcap > 0.0f) v = softcap * std::tanh(v / softcap);
            y[i] = v;
            mx = std::fmax(mx, v);
        }
        double sum = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            const float e = (y[i] == -INFINITY) ? 0.0f : std::exp(y[i] - mx);
            y[i] = e;
            sum += (double)e;
        }
        const float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
        for (int64_t i = 0; i < n; ++i) y[i] *= inv;
    }
}

namespace {
constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
constexpr float kGeluCoef = 0.044715f;
inline float silu1(float v) { return v / (1.0f + std::exp(-v)); }
inline float gelu_tanh1(float v) {
    return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kGeluCoef * v * v)));
}
inline float gelu_erf1(float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752440f)); }
}  // namespace

namespace {
// ggml's CPU GELU (GGML_GELU_FP16): look the input up at its F16 rounding and
// return the F16-rounded value; exact pass-through outside [-10, 10].
const float* gelu_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(1 << 16);
        for (uint32_t i = 0; i < t.size(); ++i) t[i] = fp16_to_fp32(fp32_to_fp16(gelu_tanh1(fp16_to_fp32((fp16_t)i))));
        return t;
    }();
    return table.data();
}
inline float gelu_ggml1(const float* table, float v) {
    if (v <= -10.0f) return 0.0f;
    if (v >= 10.0f) return v;
    return table[fp32_to_fp16(v)];
}
}  // namespace

void silu(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = silu1(x[i]);
}
void gelu_tanh(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_tanh1(x[i]);
}
void gelu_erf(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_erf1(x[i]);
}
void swiglu(const float* g, const float* u, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = silu1(g[i]) * u[i];
}
void geglu(const float* g, const float* u, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_tanh1(g[i]) * u[i];
}
void gelu_ggml(const float* x, float* y, int64_t n) {
    const float* t = gelu_table();
    if (const GeluTableFn f = kernels().gelu_table) {
        f(t, x, nullptr, y, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_ggml1(t, x[i]);
}
void geglu_ggml(const float* g, const float* u, float* y, int64_t n) {
    const float* t = gelu_table();
    if (const GeluTableFn f = kernels().gelu_table) {
        f(t, g, u, y, n);
        return;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = gelu_ggml1(t, g[i]) * u[i];
}
void add(const float* a, const float* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void mul(const float* a, const float* b, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void scale(const float* a, float s, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * s;
}

}  // namespace pyllama
