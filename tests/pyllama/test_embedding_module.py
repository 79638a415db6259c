"""pyllama.embedding: output flags, pooling and llama.cpp's normalization modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyllama.embedding import normalize, output_flags, pool, pooling_name, vector_json

V = np.array([3.0, -4.0], dtype=np.float32)


@pytest.mark.parametrize("mode, want", [
    (-1, [3.0, -4.0]),
    (0, [3.0 * 32760 / 4, -32760.0]),          # max |x| scaled to the int16 range
    (1, [3 / 7, -4 / 7]),                      # taxicab
    (2, [0.6, -0.8]),                          # euclidean
    (3, [3 / 91 ** (1 / 3), -4 / 91 ** (1 / 3)]),  # p-norm
])
def test_normalize_modes(mode, want):
    got = normalize(V, mode)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)
    if mode != -1:  # row by row along the last axis, whatever the scale
        np.testing.assert_allclose(normalize(np.stack([V, 2 * V]), mode)[1], want, rtol=1e-6)


def test_normalize_keeps_a_zero_vector_zero():
    for mode in (-1, 0, 1, 2, 4):
        assert not normalize(np.zeros(4, np.float32), mode).any()


def test_pooling():
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(pool(rows, "none"), rows)
    np.testing.assert_allclose(pool(rows, "mean"), rows.mean(axis=0), rtol=1e-7)
    np.testing.assert_array_equal(pool(rows, "cls"), rows[0])
    np.testing.assert_array_equal(pool(rows, "rank"), rows[0])
    np.testing.assert_array_equal(pool(rows, "last"), rows[2])
    with pytest.raises(ValueError):
        pool(rows[:0], "mean")


def test_output_flags_and_names():
    assert output_flags(3, "mean") == output_flags(3, "none") == [True] * 3
    assert output_flags(3, "cls") == output_flags(3, "rank") == [True, False, False]
    assert output_flags(3, "last") == [False, False, True]
    assert [pooling_name(i) for i in range(5)] == ["none", "mean", "cls", "last", "rank"]
    assert pooling_name("last") == "last"
    for bad in (-1, 5, "max", True):
        with pytest.raises(ValueError):
            pooling_name(bad)


def test_vector_json_is_what_json_dumps_writes():
    """Every float32 (random bit patterns, and the edges of Python's fixed/exponent
    notation) written as json.dumps writes the float; non-finite values as null."""
    edges = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-4, 9.99e-5, 1e-5, 1.5e-5, 1e15, 1e16, 1.2345e16, 9.999e15, 3.4e38,
             1e-38, 1.4e-45, 65504.0, 123456789.0, -2.5e-30]
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    values = np.concatenate([np.array(edges, np.float32), bits[np.isfinite(bits)]])
    assert vector_json(values) == json.dumps(values.tolist(), separators=(",", ":"))
    assert vector_json(np.array([[1.5, np.nan], [np.inf, -np.inf]], np.float32)) == "[1.5,null,null,null]"
    assert vector_json(np.zeros(0, np.float32)) == "[]"

