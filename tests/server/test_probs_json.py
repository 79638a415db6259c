"""Probability lists as JSON text: the fast path (cached per-token heads joined with
the values) writes exactly what encoding one dict per candidate writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pyllama.gguf_file import GGUFFile
from pyllama.sampling import TokenProbs
from pyllama.server import answers as R
from pyllama.server.json_text import dumps
from pyllama.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok(smollm2_path):
    return Tokenizer.from_gguf(GGUFFile(str(smollm2_path)))


def one_dict_per_candidate(tok, tp: TokenProbs, post: bool) -> list[dict]:
    key, top_key = ("prob", "top_probs") if post else ("logprob", "top_logprobs")

    def value(p: float) -> float:
        return p if post else (math.log(p) if p > 0 else -1e30)

    def piece(t: int) -> dict:
        b = tok.piece(t, True)
        return {"id": t, "token": b.decode("utf-8", "ignore"), "bytes": list(b)}

    return [{**piece(tp.token), key: value(tp.prob),
             top_key: [{**piece(i), key: value(p)} for i, p in tp.top]}]


@pytest.mark.parametrize("post", [False, True])
def test_candidates_json_is_what_dicts_encode_to(tok, post):
    rng = np.random.default_rng(1)
    n = 3000
    ids = np.concatenate([rng.choice(tok.n_vocab, n - 3, replace=False), [0, 1, tok.n_vocab - 1]]).astype(np.int32)
    ps = np.sort(rng.random(n).astype(np.float32))[::-1].copy()
    ps[-4:] = 0.0  # a zero probability is -1e30 as a log
    tp = TokenProbs(int(ids[5]), float(ps[5]), ids, ps)
    fast = dumps(R.probs_json(tok, [tp], post), separators=(",", ":"))
    slow = json.dumps(one_dict_per_candidate(tok, tp, post), ensure_ascii=False, separators=(",", ":"))
    assert fast == slow
    assert json.loads(fast)[0]["top_probs" if post else "top_logprobs"][-1]["prob" if post else "logprob"] == \
        (0.0 if post else -1e30)
