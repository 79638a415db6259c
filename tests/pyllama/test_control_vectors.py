"""Control vectors (--control-vector, --control-vector-scaled, --control-vector-layer-range):
GGUF files of direction.N rows added to layer N's output, against the numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGUFWriter
from helpers.reference_forward import ReferenceModel
from helpers.tiny_models import write_tiny_decoder

from pyllama import Llama, ModelLoadError
from pyllama.control_vectors import load, parse_specs

N_LAYER, N_EMBD = 3, 64


def write_cvec(path, rows: dict[int, np.ndarray]):
    w = GGUFWriter(str(path), "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_uint32("controlvector.layer_count", len(rows))
    for layer, row in rows.items():
        w.add_tensor(f"direction.{layer}", row.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("cvec")
    rng = np.random.default_rng(0)
    model = write_tiny_decoder(d / "m.gguf", "qwen3", n_layer=N_LAYER, n_embd=N_EMBD)
    a = {1: rng.standard_normal(N_EMBD) * 0.5, 2: rng.standard_normal(N_EMBD) * 0.5,
         5: rng.standard_normal(N_EMBD)}  # direction.5: past the last layer, ignored
    b = {2: rng.standard_normal(N_EMBD) * 0.3}
    return model, write_cvec(d / "a.gguf", a), write_cvec(d / "b.gguf", b), a, b


def test_rows_scales_and_layer_range(setup):
    _, pa, pb, a, b = setup
    v = load([(pa, 1.0), (pb, -2.0)], N_LAYER, N_EMBD)
    np.testing.assert_allclose(v[0], 0)
    np.testing.assert_allclose(v[1], a[1], rtol=1e-6)
    np.testing.assert_allclose(v[2], a[2] - 2 * b[2], rtol=1e-6)
    v = load([(pa, 1.0)], N_LAYER, N_EMBD, 2, 2)
    assert not v[1].any() and v[2].any()
    assert parse_specs(["x.gguf,y.gguf"], ["z.gguf:0.5", "/p/w:1.gguf:-1"]) == \
        [("x.gguf", 1.0), ("y.gguf", 1.0), ("z.gguf", 0.5), ("/p/w:1.gguf", -1.0)]
    with pytest.raises(ValueError):
        parse_specs([], ["z.gguf:lots"])


def test_forward_with_control_vectors_matches_reference(setup):
    model, pa, pb, _, _ = setup
    specs = [(pa, 0.8), (pb, 1.5)]
    cvec = load(specs, N_LAYER, N_EMBD)
    toks = np.random.default_rng(1).integers(0, 47, 14).tolist()
    want = ReferenceModel(model, cvec=cvec.astype(np.float64)).logits(toks)
    llm = Llama(model, n_ctx=32, control_vectors=specs, cache_type_k="f32", cache_type_v="f32")
    got = llm.eval(toks, all_logits=True)
    assert np.abs(got - want).max() < 2e-5 * np.abs(want).max()
    plain = Llama(model, n_ctx=32, cache_type_k="f32", cache_type_v="f32").eval(toks, all_logits=True)
    assert np.abs(plain - got).max() > 1e-2  # the vectors change the answer


def test_bad_control_vector_files(setup, tmp_path):
    model, *_ = setup
    wrong = write_cvec(tmp_path / "w.gguf", {1: np.ones(N_EMBD + 1)})
    with pytest.raises(ModelLoadError, match="rows have 64"):
        Llama(model, n_ctx=16, control_vectors=[(wrong, 1.0)])
    zero = write_cvec(tmp_path / "z.gguf", {0: np.ones(N_EMBD)})
    with pytest.raises(ModelLoadError, match="direction.N, N >= 1"):
        Llama(model, n_ctx=16, control_vectors=[(zero, 1.0)])
