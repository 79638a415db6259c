"""Build the native Model (a decoder, or an encoder of the BERT family) from an open GGUF file.

Weights are not copied: the native model borrows the file's memory-mapped tensor
views (and keeps them alive); Q4_0/Q4_1 matrices get a packed copy for the
matvec kernels. Every hyper-parameter comes from the file's metadata.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from typing import Callable

import numpy as np

from . import _native
from .errors import ModelLoadError
from .gguf_file import ARCHITECTURES, GGUFFile, HParams
from .rope import RopeOptions, model_rope, resolve

# The architectures with a native forward pass, in the native table's order:
# text generation (causal, KV cache, logits) and embeddings-only encoders.
DECODER_ARCHS = tuple(name for name, info in ARCHITECTURES.items() if info.decoder)
ENCODER_ARCHS = tuple(name for name, info in ARCHITECTURES.items() if info.encoder)

# GGUF tensor name (after "blk.N.") -> native role
LAYER_ROLES = {
    "attn_norm.weight": "attn_norm",
    "attn_q.weight": "wq", "attn_k.weight": "wk", "attn_v.weight": "wv", "attn_output.weight": "wo",
    "attn_q.bias": "bq", "attn_k.bias": "bk", "attn_v.bias": "bv", "attn_output.bias": "bo",
    "attn_q_norm.weight": "q_norm", "attn_k_norm.weight": "k_norm",
    "post_attention_norm.weight": "post_attn_norm",
    "ffn_norm.weight": "ffn_norm",
    "ffn_gate.weight": "gate", "ffn_up.weight": "up", "ffn_down.weight": "down",
    "post_ffw_norm.weight": "post_ffw_norm",
}
MODEL_ROLES = {"token_embd.weight": "tok_embd", "output.weight": "output", "output_norm.weight": "output_norm"}
# The BERT family's tensors (llama.cpp's names) -> native roles
ENCODER_LAYER_ROLES = {
    "attn_q.weight": "wq", "attn_k.weight": "wk", "attn_v.weight": "wv",
    "attn_q.bias": "bq", "attn_k.bias": "bk", "attn_v.bias": "bv",
    "attn_qkv.weight": "wqkv", "attn_qkv.bias": "bqkv",
    "attn_q_norm.weight": "q_norm", "attn_q_norm.bias": "q_norm_b",
    "attn_k_norm.weight": "k_norm", "attn_k_norm.bias": "k_norm_b",
    "attn_output.weight": "wo", "attn_output.bias": "bo",
    "attn_output_norm.weight": "attn_out_norm", "attn_output_norm.bias": "attn_out_norm_b",
    "attn_norm_2.weight": "attn_norm_2", "attn_norm_2.bias": "attn_norm_2_b",
    "ffn_gate.weight": "gate", "ffn_up.weight": "up", "ffn_up.bias": "up_b",
    "ffn_down.weight": "down", "ffn_down.bias": "down_b",
    "layer_output_norm.weight": "layer_out_norm", "layer_output_norm.bias": "layer_out_norm_b",
}
ENCODER_MODEL_ROLES = {
    "token_embd.weight": "tok_embd", "position_embd.weight": "pos_embd", "token_types.weight": "type_embd",
    "token_embd_norm.weight": "tok_norm", "token_embd_norm.bias": "tok_norm_b",
    "cls.weight": "cls", "cls.bias": "cls_b", "cls.output.weight": "cls_out", "cls.output.bias": "cls_out_b",
}
# Read into the hyper-parameters rather than attached as weights.
PARAM_TENSORS = {"rope_freqs.weight"}
_BLOCK = re.compile(r"blk\.(\d+)\.(.+)")
F32 = 0


def model_params(f: GGUFFile, hp: HParams, rope: RopeOptions = RopeOptions()) -> "_native.ModelParams":
    """Native hyper-parameters from the file's `<arch>.*` metadata; `rope` overrides its
    RoPE scaling as llama-server's --rope-* and --yarn-* flags do (pyllama.rope)."""
    if hp.arch not in DECODER_ARCHS + ENCODER_ARCHS:
        raise ModelLoadError(f"'{f.path}': architecture '{hp.arch}' has no forward pass here "
                             f"(text generation: {', '.join(DECODER_ARCHS)}; embeddings: {', '.join(ENCODER_ARCHS)})")
    p = _native.ModelParams()
    p.arch = hp.arch
    p.n_vocab = hp.n_vocab or f.tensor("token_embd.weight").n_rows
    p.n_embd, p.n_layer, p.n_head, p.n_head_kv = hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv
    p.head_dim_k, p.head_dim_v, p.n_ff, p.n_rot = hp.head_dim_k, hp.head_dim_v, hp.n_ff, hp.n_rot
    p.norm_eps = hp.norm_eps
    p.rope_base, p.rope_scale = hp.rope_freq_base, hp.rope_freq_scale
    if hp.family == "bert":
        return p
    r = resolve(model_rope(f.get, hp.arch, hp.n_ctx_train), rope)
    if not (r.freq_base > 0 and r.freq_scale > 0):
        raise ModelLoadError(f"'{f.path}': RoPE frequency base and scale must be positive")
    p.rope_base, p.rope_scale = r.freq_base, r.freq_scale
    p.rope_ext_factor, p.rope_attn_factor = r.ext_factor, r.attn_factor
    p.rope_beta_fast, p.rope_beta_slow, p.rope_n_ctx_orig = r.beta_fast, r.beta_slow, r.n_ctx_orig
    if hp.family == "gemma3":
        # sliding-window layers: 5 of every 6 (the 6th is global), local RoPE base 10000, no scaling
        p.sliding_window = hp.sliding_window
        if hp.sliding_window > 0:
            pattern = f.get(f"{hp.arch}.attention.sliding_window_pattern")
            if isinstance(pattern, list) and len(pattern) == hp.n_layer:
                p.swa_layers = [1 if v else 0 for v in pattern]
            else:
                period = pattern if isinstance(pattern, int) and pattern > 0 else hp.swa_pattern
                p.swa_layers = [1 if il % period < period - 1 else 0 for il in range(hp.n_layer)]
        p.rope_base_swa, p.rope_scale_swa = 10000.0, 1.0
    else:
        p.final_logit_softcap = hp.final_logit_softcap
    freqs = f.tensors.get("rope_freqs.weight")
    if freqs is not None:  # Llama 3.1+: per-pair divisors of the RoPE angle
        p.rope_freq_factors = np.asarray(_as_f32_vector(f, freqs)).view(np.float32).tolist()
    return p


def _as_f32_vector(f: GGUFFile, t) -> np.ndarray:
    if t.type == F32:
        return t.data
    return _native.dequantize(t.data, t.type, t.n_cols * t.n_rows).view(np.uint8)


def load_model(f: GGUFFile, *, progress: Callable[[float], None] | None = None,
               rope: RopeOptions = RopeOptions()) -> "_native.Model":
    """The native Model of an open GGUF file; raises ModelLoadError naming any problem."""
    hp = f.hparams
    params = model_params(f, hp, rope)
    try:
        model = _native.Model(params)
    except ValueError as e:
        raise ModelLoadError(f"'{f.path}': {e}") from None
    total = sum(t.nbytes for t in f.tensors.values()) or 1
    done = 0
    encoder = hp.arch in ENCODER_ARCHS
    layer_roles, model_roles = (ENCODER_LAYER_ROLES, ENCODER_MODEL_ROLES) if encoder else (LAYER_ROLES, MODEL_ROLES)
    for name, t in f.tensors.items():
        m = _BLOCK.fullmatch(name)
        layer, role = (int(m.group(1)), layer_roles.get(m.group(2))) if m else (-1, model_roles.get(name))
        if role is None:
            if name not in PARAM_TENSORS:
                warnings.warn(f"'{f.path}': tensor {name} is not used by the {hp.arch} forward pass", stacklevel=2)
            continue
        if len(t.shape) > 2:
            raise ModelLoadError(f"'{f.path}': tensor {name} has {len(t.shape)} dimensions, expected at most 2")
        vector = len(t.shape) == 1
        data, ttype = (_as_f32_vector(f, t), F32) if vector else (t.data, t.type)
        try:
            model.set_tensor(role, layer, data, ttype, 1 if vector else t.n_rows, t.n_cols)
        except ValueError as e:
            raise ModelLoadError(f"'{f.path}': {name}: {e}") from None
        done += t.nbytes
        if progress:
            progress(done / total)
    try:
        model.finalize()
    except ValueError as e:
        raise ModelLoadError(f"'{f.path}': {e}") from None
    return model


class LoadProgress:
    """A one-line progress bar on stderr, shown only on a terminal and only once
    loading has taken longer than `delay` seconds."""

    def __init__(self, label: str, *, enabled: bool | None = None, delay: float = 0.5):
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self.delay = delay
        self.shown = False

    def __call__(self, frac: float) -> None:
        if not self.enabled or time.perf_counter() - self.start < self.delay:
            return
        self.shown = True
        filled = int(30 * frac)
        print(f"\rloading {self.label} [{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%}", end="",
              file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.shown:
            self(1.0)
            print(f" {time.perf_counter() - self.start:.1f} s", file=sys.stderr, flush=True)
