"""A plain numpy forward pass of the decoder architectures, for tests.

Weights are dequantized with gguf.quants (independent of our kernels) and all
math runs in float64 with no cache: the whole token sequence is recomputed.
This is the yardstick the native engine is compared against on synthetic
models (qwen2, qwen3) and on real ones.
"""

from __future__ import annotations

import math

import numpy as np
from gguf.quants import dequantize

from pyllama.gguf_file import GGUFFile
from pyllama.model_loader import model_params
from pyllama.rope import RopeOptions


class GGUFWeights:
    """A GGUF file's hyper-parameters and its tensors dequantized to float64 (cached)."""

    def __init__(self, path):
        self.f = GGUFFile(path)
        self.hp = self.f.hparams
        self._cache: dict[str, np.ndarray] = {}

    def w(self, name: str) -> np.ndarray | None:
        if name not in self._cache:
            t = self.f.tensors.get(name)
            if t is None:
                return None
            shape = tuple(reversed(t.shape))
            arr = dequantize(np.asarray(t.data), t.type).reshape(shape).astype(np.float64)
            self._cache[name] = arr
        return self._cache[name]


class ReferenceModel(GGUFWeights):
    """`rope`: RoPE/YaRN overrides, resolved as the library resolves them (the values
    are taken from the native parameters; the rotation itself is computed here)."""

    def __init__(self, path, rope: RopeOptions = RopeOptions(), cvec: np.ndarray | None = None):
        super().__init__(path)
        self.cvec = cvec  # (n_layer, n_embd) added to each layer's output (control vectors), or None
        self.p = model_params(self.f, self.hp, rope)

    def logits(self, tokens: list[int]) -> np.ndarray:
        """Logits (n_tokens, n_vocab) of one sequence at positions 0..n-1."""
        out_w = self.w("output.weight")
        return self.hidden(tokens) @ (out_w if out_w is not None else self.w("token_embd.weight")).T

    def hidden(self, tokens: list[int]) -> np.ndarray:
        """Final hidden states (n_tokens, n_embd) after the output norm: what the LM head reads."""
        hp, p = self.hp, self.p
        arch = hp.arch
        n = len(tokens)
        pos = np.arange(n)
        x = self.w("token_embd.weight")[tokens]
        if arch == "gemma3":
            x = x * math.sqrt(hp.n_embd)
        neox = arch in ("qwen2", "qwen3", "gemma3")
        for il in range(hp.n_layer):
            b = f"blk.{il}."
            swa = bool(p.swa_layers[il]) if len(p.swa_layers) else False
            h = rms(x, self.w(b + "attn_norm.weight"), hp.norm_eps)
            q = h @ self.w(b + "attn_q.weight").T
            k = h @ self.w(b + "attn_k.weight").T
            v = h @ self.w(b + "attn_v.weight").T
            for t, bias in ((q, "attn_q.bias"), (k, "attn_k.bias"), (v, "attn_v.bias")):
                if self.w(b + bias) is not None:
                    t += self.w(b + bias)
            q = q.reshape(n, hp.n_head, hp.head_dim_k)
            k = k.reshape(n, hp.n_head_kv, hp.head_dim_k)
            v = v.reshape(n, hp.n_head_kv, hp.head_dim_v)
            if self.w(b + "attn_q_norm.weight") is not None:
                q = rms(q, self.w(b + "attn_q_norm.weight"), hp.norm_eps)
                k = rms(k, self.w(b + "attn_k_norm.weight"), hp.norm_eps)
            base, scale = (p.rope_base_swa, p.rope_scale_swa) if swa else (p.rope_base, p.rope_scale)
            ff = None if swa else self.w("rope_freqs.weight")
            yarn = Yarn(p.rope_ext_factor, p.rope_attn_factor, p.rope_beta_fast, p.rope_beta_slow, p.rope_n_ctx_orig)
            q = rope(q, pos, hp.n_rot, base, scale, neox, ff, yarn)
            k = rope(k, pos, hp.n_rot, base, scale, neox, ff, yarn)
            if arch == "gemma3":
                q = q / math.sqrt(hp.head_dim_k)
                kq_scale = 1.0
            else:
                kq_scale = 1.0 / math.sqrt(hp.head_dim_k)
            group = hp.n_head // hp.n_head_kv
            out = np.zeros((n, hp.n_head, hp.head_dim_v))
            mask = pos[None, :] <= pos[:, None]
            if swa:
                mask &= pos[:, None] - pos[None, :] < p.sliding_window
            for hh in range(hp.n_head):
                s = q[:, hh] @ k[:, hh // group].T * kq_scale
                s = np.where(mask, s, -np.inf)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                s /= s.sum(axis=1, keepdims=True)
                out[:, hh] = s @ v[:, hh // group]
            o = out.reshape(n, -1) @ self.w(b + "attn_output.weight").T
            if self.w(b + "attn_output.bias") is not None:
                o += self.w(b + "attn_output.bias")
            if arch == "gemma3":
                o = rms(o, self.w(b + "post_attention_norm.weight"), hp.norm_eps)
            x = x + o
            h = rms(x, self.w(b + "ffn_norm.weight"), hp.norm_eps)
            g = h @ self.w(b + "ffn_gate.weight").T
            u = h @ self.w(b + "ffn_up.weight").T
            act = gelu_tanh(g) if arch == "gemma3" else g / (1 + np.exp(-g))
            d = (act * u) @ self.w(b + "ffn_down.weight").T
            if arch == "gemma3":
                d = rms(d, self.w(b + "post_ffw_norm.weight"), hp.norm_eps)
            x = x + d
            if self.cvec is not None:
                x = x + self.cvec[il]
        return rms(x, self.w("output_norm.weight"), hp.norm_eps)


def rms(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


class Yarn:
    """YaRN's settings (arXiv:2309.00071, as ggml applies them): ext_factor 0 is plain RoPE."""

    def __init__(self, ext_factor: float = 0.0, attn_factor: float = 1.0, beta_fast: float = 32.0,
                 beta_slow: float = 1.0, n_ctx_orig: int = 0):
        self.ext, self.attn, self.beta_fast, self.beta_slow, self.n_ctx_orig = (
            ext_factor, attn_factor, beta_fast, beta_slow, n_ctx_orig)


def rope(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, scale: float, neox: bool,
         factors: np.ndarray | None = None, yarn: Yarn | None = None) -> np.ndarray:
    """x: (n, heads, head_dim); rotates the first n_rot dims of each head; factors divide the angles.

    With YaRN, each pair's angle blends the interpolated one (scale * theta) and the
    extrapolated one (theta) by a ramp over the pair index between the dimensions whose
    wavelengths fit beta_fast and beta_slow times into the original context; cos and sin
    are scaled by attn_factor * (1 + 0.1 ln(1/scale))."""
    x = x.copy()
    inv = base ** (-np.arange(0, n_rot, 2) / n_rot)                      # (n_rot/2)
    if factors is not None:
        inv = inv / factors
    extrap = pos[:, None] * inv[None, :]                                 # (n, n_rot/2)
    ang = extrap * scale
    mag = 1.0
    if yarn is not None:
        mag = yarn.attn
        if yarn.ext != 0:
            def corr_dim(beta: float) -> float:  # the pair index that turns beta times in n_ctx_orig positions
                return n_rot * math.log(yarn.n_ctx_orig / (beta * 2 * math.pi)) / (2 * math.log(base))
            lo = max(0.0, math.floor(corr_dim(yarn.beta_fast)))
            hi = min(n_rot - 1.0, math.ceil(corr_dim(yarn.beta_slow)))
            i = np.arange(n_rot // 2)
            ramp = 1 - np.clip((i - lo) / max(0.001, hi - lo), 0, 1)           # 1: extrapolate, 0: interpolate
            mix = ramp * yarn.ext
            ang = ang * (1 - mix) + extrap * mix
            mag *= 1 + 0.1 * math.log(1 / scale)
    c, s = mag * np.cos(ang)[:, None, :], mag * np.sin(ang)[:, None, :]
    if neox:
        a, b = x[..., : n_rot // 2].copy(), x[..., n_rot // 2: n_rot].copy()
        x[..., : n_rot // 2], x[..., n_rot // 2: n_rot] = a * c - b * s, a * s + b * c
    else:
        a, b = x[..., 0:n_rot:2].copy(), x[..., 1:n_rot:2].copy()
        x[..., 0:n_rot:2], x[..., 1:n_rot:2] = a * c - b * s, a * s + b * c
    return x
