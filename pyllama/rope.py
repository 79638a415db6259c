"""RoPE scaling as llama.cpp decides it: the model's trained settings (GGUF
`{arch}.rope.*`), a user's overrides (llama-server's --rope-scaling, --rope-scale,
--rope-freq-base, --rope-freq-scale, --yarn-*), and the values the forward pass
uses (native ModelParams.rope_*), resolved with llama.cpp's rules:

- a frequency base or scale of 0, a YaRN factor below 0, an original context of 0
  mean "the model's" (its training context when it names no original one);
- scaling type "none" never scales; an unset extrapolation factor is 1.0 with YaRN,
  else 0.0;
- with YaRN on (extrapolation factor != 0) the attention factor is the YaRN magnitude
  correction for factor = 1 / freq_scale, divided by the 1 + 0.1 ln(factor) the
  kernel multiplies in (so the net magnitude is YaRN's), times the model's
  `rope.scaling.attn_factor`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCALING_TYPES = ("none", "linear", "yarn")


@dataclass(frozen=True)
class RopeOptions:
    """A user's RoPE overrides; every default means "the model's"."""

    scaling_type: str = ""          # none | linear | yarn; "": the model's
    freq_base: float = 0.0
    freq_scale: float = 0.0
    yarn_ext_factor: float = -1.0
    yarn_attn_factor: float = -1.0
    yarn_beta_fast: float = -1.0
    yarn_beta_slow: float = -1.0
    yarn_orig_ctx: int = 0

    def __post_init__(self) -> None:
        if self.scaling_type and self.scaling_type not in SCALING_TYPES:
            raise ValueError(f"RoPE scaling type must be one of {', '.join(SCALING_TYPES)}, "
                             f"got {self.scaling_type!r}")
        if self.freq_base < 0 or self.freq_scale < 0 or self.yarn_orig_ctx < 0:
            raise ValueError("RoPE frequency base and scale, and the YaRN original context, cannot be negative")


@dataclass(frozen=True)
class ModelRope:
    """A model's trained RoPE settings, as llama.cpp reads them from GGUF."""

    scaling_type: str = "linear"    # rope.scaling.type; absent: linear (with no factor: no scaling)
    freq_base: float = 10000.0      # rope.freq_base
    freq_scale: float = 1.0         # 1 / rope.scaling.factor (1 without a factor)
    n_ctx_orig: int = 0             # rope.scaling.original_context_length; 0: the training context
    n_ctx_train: int = 0
    ext_factor: float = -1.0        # rope.scaling.yarn_ext_factor
    attn_factor: float = 1.0        # rope.scaling.yarn_attn_factor
    beta_fast: float = 32.0         # rope.scaling.yarn_beta_fast
    beta_slow: float = 1.0          # rope.scaling.yarn_beta_slow
    yarn_log_mul: float = 0.0       # rope.scaling.yarn_log_multiplier
    rope_attn_factor: float = 1.0   # rope.scaling.attn_factor


@dataclass(frozen=True)
class RopeParams:
    """What the forward pass uses (native ModelParams.rope_* of the global layers)."""

    freq_base: float
    freq_scale: float
    ext_factor: float
    attn_factor: float
    beta_fast: float
    beta_slow: float
    n_ctx_orig: int


def _mscale(scale: float, mscale: float) -> float:
    return 1.0 if scale <= 1.0 else 0.1 * mscale * math.log(scale) + 1.0


def resolve(model: ModelRope, opts: RopeOptions = RopeOptions()) -> RopeParams:
    f32 = _f32
    ext = opts.yarn_ext_factor if opts.yarn_ext_factor >= 0 else model.ext_factor
    attn = opts.yarn_attn_factor if opts.yarn_attn_factor >= 0 else model.attn_factor
    beta_fast = opts.yarn_beta_fast if opts.yarn_beta_fast >= 0 else model.beta_fast
    beta_slow = opts.yarn_beta_slow if opts.yarn_beta_slow >= 0 else model.beta_slow
    base = opts.freq_base if opts.freq_base != 0 else model.freq_base
    scale = opts.freq_scale if opts.freq_scale != 0 else model.freq_scale
    n_ctx_orig = opts.yarn_orig_ctx or model.n_ctx_orig or model.n_ctx_train
    scaling = opts.scaling_type or model.scaling_type
    if scaling == "none":
        scale = 1.0
    if ext < 0:
        ext = 1.0 if scaling == "yarn" else 0.0
    if ext != 0:
        factor = 1.0 / f32(scale)
        if model.yarn_log_mul != 0:
            attn = _mscale(factor, 1.0) / _mscale(factor, model.yarn_log_mul)
        else:
            attn = _mscale(factor, 1.0)
        attn *= 1.0 / (1.0 + 0.1 * math.log(factor))  # the kernel multiplies this back in
    attn *= model.rope_attn_factor
    return RopeParams(f32(base), f32(scale), f32(ext), f32(attn), f32(beta_fast), f32(beta_slow), int(n_ctx_orig))


def _f32(x: float) -> float:
    return float(np.float32(x))


def model_rope(meta_get, arch: str, n_ctx_train: int) -> ModelRope:
    """The model's RoPE settings from its metadata (`meta_get(key, default)`)."""
    p = f"{arch}.rope."
    factor = meta_get(p + "scaling.factor", None)
    if factor is None:
        factor = meta_get(p + "scale_linear", 0.0)  # the older key
    factor = float(factor or 0.0)
    return ModelRope(
        scaling_type=str(meta_get(p + "scaling.type", "linear")),
        freq_base=float(meta_get(p + "freq_base", 10000.0)),
        freq_scale=1.0 if factor == 0.0 else 1.0 / factor,
        n_ctx_orig=int(meta_get(p + "scaling.original_context_length", 0) or 0),
        n_ctx_train=n_ctx_train,
        ext_factor=float(meta_get(p + "scaling.yarn_ext_factor", -1.0)),
        attn_factor=float(meta_get(p + "scaling.yarn_attn_factor", 1.0)),
        beta_fast=float(meta_get(p + "scaling.yarn_beta_fast", 32.0)),
        beta_slow=float(meta_get(p + "scaling.yarn_beta_slow", 1.0)),
        yarn_log_mul=float(meta_get(p + "scaling.yarn_log_multiplier", 0.0)),
        rope_attn_factor=float(meta_get(p + "scaling.attn_factor", 1.0)),
    )
