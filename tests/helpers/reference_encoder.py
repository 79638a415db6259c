"""A plain numpy forward pass of the BERT-family encoders (bert, nomic-bert,
jina-bert-v2), for tests: weights dequantized with gguf.quants, float64 math,
one sequence at a time at positions 0..n-1, as llama.cpp's graph for them
(models/bert.cpp describes it). Pooling, normalization and the classifier head
are written here again, independently of pyllama.embedding.
"""

from __future__ import annotations

import math

import numpy as np

from helpers.reference_forward import GGUFWeights, gelu_tanh, rope


def layer_norm(x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def alibi_slopes(n_head: int, max_bias: float = 8.0) -> np.ndarray:
    n = 2 ** math.floor(math.log2(n_head))
    m0, m1 = 2.0 ** (-max_bias / n), 2.0 ** (-max_bias / 2 / n)
    return np.array([m0 ** (h + 1) if h < n else m1 ** (2 * (h - n) + 1) for h in range(n_head)])


class ReferenceEncoder(GGUFWeights):

    def hidden(self, tokens: list[int]) -> np.ndarray:
        """The final hidden states (n_tokens, n_embd) of one sequence."""
        hp, arch = self.hp, self.hp.arch
        n, E, H = len(tokens), hp.n_embd, hp.n_head
        hd = hp.head_dim_k
        pos = np.arange(n)
        x = self.w("token_embd.weight")[tokens]
        if self.w("token_types.weight") is not None:
            x = x + self.w("token_types.weight")[0]
        if arch == "bert":
            x = x + self.w("position_embd.weight")[pos]
        x = layer_norm(x, self.w("token_embd_norm.weight"), self.w("token_embd_norm.bias"), hp.norm_eps)
        for il in range(hp.n_layer):
            b = f"blk.{il}."
            wb = lambda name: self.w(b + name)  # noqa: E731
            if wb("attn_qkv.weight") is not None:
                qkv = x @ wb("attn_qkv.weight").T + (wb("attn_qkv.bias") if wb("attn_qkv.bias") is not None else 0)
                q, k, v = qkv[:, :E], qkv[:, E:2 * E], qkv[:, 2 * E:]
            else:
                q, k, v = (x @ wb(f"attn_{t}.weight").T + (wb(f"attn_{t}.bias") if wb(f"attn_{t}.bias") is not None else 0)
                           for t in "qkv")
            if wb("attn_q_norm.weight") is not None:
                q = layer_norm(q, wb("attn_q_norm.weight"), wb("attn_q_norm.bias"), hp.norm_eps)
            if wb("attn_k_norm.weight") is not None:
                k = layer_norm(k, wb("attn_k_norm.weight"), wb("attn_k_norm.bias"), hp.norm_eps)
            q, k, v = q.reshape(n, H, hd), k.reshape(n, H, hd), v.reshape(n, H, hd)
            if arch == "nomic-bert":
                q = rope(q, pos, hp.n_rot, hp.rope_freq_base, 1.0, True)
                k = rope(k, pos, hp.n_rot, hp.rope_freq_base, 1.0, True)
            out = np.zeros((n, H, hd))
            slopes = alibi_slopes(H) if arch == "jina-bert-v2" else np.zeros(H)
            dist = -np.abs(pos[:, None] - pos[None, :])
            for h in range(H):
                s = q[:, h] @ k[:, h].T / math.sqrt(hd) + slopes[h] * dist
                s = np.exp(s - s.max(axis=1, keepdims=True))
                out[:, h] = (s / s.sum(axis=1, keepdims=True)) @ v[:, h]
            o = out.reshape(n, E) @ wb("attn_output.weight").T
            if wb("attn_output.bias") is not None:
                o = o + wb("attn_output.bias")
            cur = layer_norm(o + x, wb("attn_output_norm.weight"), wb("attn_output_norm.bias"), hp.norm_eps)
            if wb("attn_norm_2.weight") is not None:
                cur = layer_norm(cur + x, wb("attn_norm_2.weight"), wb("attn_norm_2.bias"), hp.norm_eps)
            up = cur @ wb("ffn_up.weight").T
            if arch == "nomic-bert":
                g = cur @ wb("ffn_gate.weight").T
                h_ = g / (1 + np.exp(-g)) * up
            else:
                if wb("ffn_up.bias") is not None:
                    up = up + wb("ffn_up.bias")
                if arch == "jina-bert-v2" and wb("ffn_gate.weight") is not None:
                    h_ = gelu_tanh(cur @ wb("ffn_gate.weight").T) * up
                elif up.shape[1] == 2 * hp.n_ff:
                    h_ = gelu_tanh(up[:, :hp.n_ff]) * up[:, hp.n_ff:]
                else:
                    h_ = gelu_tanh(up)
            d = h_ @ wb("ffn_down.weight").T
            if arch != "nomic-bert" and wb("ffn_down.bias") is not None:
                d = d + wb("ffn_down.bias")
            x = layer_norm(d + cur, wb("layer_output_norm.weight"), wb("layer_output_norm.bias"), hp.norm_eps)
        return x

    def classify(self, row: np.ndarray) -> np.ndarray:
        h = np.tanh(self.w("cls.weight") @ row + self.w("cls.bias"))
        if self.w("cls.output.weight") is None:
            return h
        return self.w("cls.output.weight") @ h + self.w("cls.output.bias")


def pool(states: np.ndarray, pooling: str) -> np.ndarray:
    return {"none": lambda s: s, "mean": lambda s: s.mean(axis=0), "cls": lambda s: s[0],
            "last": lambda s: s[-1], "rank": lambda s: s[0]}[pooling](states)


def normalize(v: np.ndarray, mode: int) -> np.ndarray:
    if mode == -1:
        return v
    if mode == 0:
        return v / (np.abs(v).max() / 32760.0)
    return v / (np.abs(v) ** mode).sum() ** (1.0 / mode)
