"""Transformer ops against numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyllama import _native

rng = np.random.default_rng(0)


def test_rms_norm():
    x = rng.standard_normal((7, 576)).astype(np.float32)
    w = rng.standard_normal(576).astype(np.float32)
    ref = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + 1e-5) * w
    np.testing.assert_allclose(_native.rms_norm(x, w, eps=1e-5), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_native.rms_norm(x, eps=1e-5), ref / w, rtol=1e-4, atol=1e-5)


def test_layer_norm():
    x = rng.standard_normal((5, 384)).astype(np.float32) * 2 + 1
    w, b = rng.standard_normal(384).astype(np.float32), rng.standard_normal(384).astype(np.float32)
    mu = x.mean(-1, keepdims=True)
    ref = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-12) * w + b
    np.testing.assert_allclose(_native.layer_norm(x, w, b, eps=1e-12), ref, rtol=1e-4, atol=1e-5)


def rope_ref(x, pos, n_rot, base, scale, neox):
    out = x.astype(np.float64).copy()
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    for t, p in enumerate(pos):
        th = scale * p * inv
        c, s = np.cos(th), np.sin(th)
        if neox:
            a, b = x[t, :, :half].copy(), x[t, :, half:n_rot].copy()
            out[t, :, :half], out[t, :, half:n_rot] = a * c - b * s, a * s + b * c
        else:
            a, b = x[t, :, 0:n_rot:2].copy(), x[t, :, 1:n_rot:2].copy()
            out[t, :, 0:n_rot:2], out[t, :, 1:n_rot:2] = a * c - b * s, a * s + b * c
    return out


@pytest.mark.parametrize("neox", [False, True])
@pytest.mark.parametrize("n_rot,base,scale", [(64, 10000.0, 1.0), (32, 1e6, 0.25), (256, 1e4, 1.0)])
def test_rope(neox, n_rot, base, scale):
    hd = max(64, n_rot)
    x = rng.standard_normal((6, 3, hd)).astype(np.float32)
    pos = np.array([0, 1, 7, 100, 1000, 4095], np.int32)
    y = _native.rope(x, pos, n_rot=n_rot, freq_base=base, freq_scale=scale, neox=neox)
    np.testing.assert_allclose(y, rope_ref(x, pos, n_rot, base, scale, neox), atol=2e-3)
    np.testing.assert_array_equal(y[:, :, n_rot:], x[:, :, n_rot:])


@pytest.mark.parametrize("softcap", [0.0, 30.0])
def test_softmax(softcap):
    x = rng.standard_normal((4, 1000)).astype(np.float32) * 20
    v = x.astype(np.float64) * 0.5
    if softcap:
        v = softcap * np.tanh(v / softcap)
    e = np.exp(v - v.max(-1, keepdims=True))
    np.testing.assert_allclose(_native.softmax(x, scale=0.5, softcap=softcap), e / e.sum(-1, keepdims=True),
                               rtol=1e-5, atol=1e-7)


def test_softmax_masked_entries():
    x = np.array([[0.0, -np.inf, 1.0]], np.float32)
    y = _native.softmax(x)
    assert y[0, 1] == 0.0 and abs(y.sum() - 1) < 1e-6


def test_activations_and_elementwise():
    x = rng.standard_normal(2000).astype(np.float32) * 4
    u = rng.standard_normal(2000).astype(np.float32)
    silu = x / (1 + np.exp(-x.astype(np.float64)))
    gelu_t = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.astype(np.float64) ** 3)))
    gelu_e = 0.5 * x * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x.astype(np.float64)]))
    np.testing.assert_allclose(_native.silu(x), silu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_native.gelu_tanh(x), gelu_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_native.gelu_erf(x), gelu_e, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_native.swiglu(x, u), silu * u, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_native.geglu(x, u), gelu_t * u, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(_native.add(x, u), x + u)
    np.testing.assert_array_equal(_native.mul(x, u), x * u)
    np.testing.assert_array_equal(_native.scale(x, 0.125), x * np.float32(0.125))


def attention_ref(q, k, v, q_pos, q_seq, kv_pos, kv_seq, scale, softcap, window):
    nt, nh, hd = q.shape
    nkv, nhkv, _ = k.shape
    kf, vf = k.view(np.float16).astype(np.float64), v.view(np.float16).astype(np.float64)
    qf = q.astype(np.float16).astype(np.float64)
    out = np.zeros((nt, nh, hd))
    for t in range(nt):
        ok = (kv_pos >= 0) & (kv_pos <= q_pos[t]) & ((kv_seq >> np.uint64(q_seq[t])) & np.uint64(1)).astype(bool)
        if window:
            ok &= q_pos[t] - kv_pos < window
        for h in range(nh):
            hk = h // (nh // nhkv)
            s = kf[:, hk, :] @ qf[t, h] * scale
            if softcap:
                s = softcap * np.tanh(s / softcap)
            s = np.where(ok, s, -np.inf)
            p = np.exp(s - s.max())
            p /= p.sum()
            out[t, h] = p @ vf[:, hk, :]
    return out


@pytest.mark.parametrize("window,softcap", [(0, 0.0), (5, 0.0), (0, 50.0)])
def test_attention_gqa_causal_multi_sequence(window, softcap):
    nt, nh, nhkv, hd, nkv = 6, 8, 2, 64, 20
    q = rng.standard_normal((nt, nh, hd)).astype(np.float32)
    k = rng.standard_normal((nkv, nhkv, hd)).astype(np.float16).view(np.uint16)
    v = rng.standard_normal((nkv, nhkv, hd)).astype(np.float16).view(np.uint16)
    # cells 0..11: sequence 0 at positions 0..11, cells 12..17: sequence 1 at 0..5 (cell 15 shared by both),
    # cells 18, 19 empty
    kv_pos = np.array(list(range(12)) + list(range(6)) + [-1, -1], np.int32)
    kv_seq = np.array([1] * 12 + [2] * 6 + [0, 0], np.uint64)
    kv_seq[15] = 3
    q_pos = np.array([9, 10, 11, 3, 4, 5], np.int32)
    q_seq = np.array([0, 0, 0, 1, 1, 1], np.int32)
    scale = 1 / math.sqrt(hd)
    y = _native.attention(q, k, v, q_pos, q_seq, kv_pos, kv_seq, scale=scale, softcap=softcap, window=window)
    ref = attention_ref(q, k, v, q_pos, q_seq, kv_pos, kv_seq, scale, softcap, window)
    # F16 V rows are summed in an F16 accumulator, as llama.cpp's CPU flash attention does
    np.testing.assert_allclose(y, ref, atol=4e-3)
    assert np.abs(y - ref).mean() < 5e-4


def test_attention_thread_invariance():
    q = rng.standard_normal((5, 4, 32)).astype(np.float32)
    k = rng.standard_normal((9, 1, 32)).astype(np.float16).view(np.uint16)
    v = rng.standard_normal((9, 1, 32)).astype(np.float16).view(np.uint16)
    args = (q, k, v, np.arange(4, 9, dtype=np.int32), np.zeros(5, np.int32), np.arange(9, dtype=np.int32),
            np.ones(9, np.uint64))
    before = _native.num_threads()
    try:
        _native.set_num_threads(1)
        a = _native.attention(*args, scale=0.2)
        _native.set_num_threads(2)
        b = _native.attention(*args, scale=0.2)
    finally:
        _native.set_num_threads(before)
    np.testing.assert_array_equal(a, b)
    # the first token alone gives the same bits as inside the batch
    one = _native.attention(q[:1], k, v, args[3][:1], args[4][:1], args[5], args[6], scale=0.2)
    np.testing.assert_array_equal(one[0], a[0])
