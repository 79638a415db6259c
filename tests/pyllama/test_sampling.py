"""The native sampler chain against small numpy references on crafted logits:
each sampler alone (what is left and with which probabilities), the chain order,
seeded determinism, the statistics of the final draw, the token-filter hook,
reported probabilities, and llama-server's request rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyllama import _native
from pyllama.sampling import (DEFAULT_SAMPLERS, Sampler, SamplingError, SamplingParams, dry_breakers,
                              parse_samplers)

V = 64


def crafted_logits(seed: int = 0, n: int = V, scale: float = 2.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=n) * scale).astype(np.float32)


def softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x[np.isfinite(x)].max())
    e[~np.isfinite(x)] = 0.0
    return e / e.sum()


def only(*samplers: str, **kw) -> SamplingParams:
    """A chain of just these samplers (then the draw), at temperature 1."""
    return SamplingParams(samplers=tuple(samplers), seed=kw.pop("seed", 1), **kw)


def survivors(params: SamplingParams, logits: np.ndarray, history=()) -> dict[int, float]:
    s = Sampler(params, len(logits))
    s.accept(list(history))
    s.sample(logits)
    ids, ps = s.chain.ranked()
    return {int(i): float(p) for i, p in zip(ids, ps) if p > 0}


def expect(ids, logits) -> dict[int, float]:
    ids = list(ids)
    p = softmax(logits[ids])
    return {i: float(q) for i, q in zip(ids, p)}


def assert_same(got: dict[int, float], want: dict[int, float], tol: float = 1e-5) -> None:
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=tol)


# -- truncation samplers --------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 5, 40, 64, 200])
def test_top_k(k):
    x = crafted_logits()
    top = np.argsort(-x, kind="stable")[:k]
    assert_same(survivors(only("top_k", top_k=k), x), expect(top, x))


def test_top_k_zero_keeps_everything():
    x = crafted_logits()
    assert_same(survivors(only("top_k", top_k=0), x), expect(range(V), x))


@pytest.mark.parametrize("p,min_keep", [(0.5, 0), (0.9, 0), (0.1, 0), (0.1, 5), (0.999, 0)])
def test_top_p(p, min_keep):
    x = crafted_logits(1)
    probs = softmax(x)
    order = np.argsort(-probs, kind="stable")
    cum = np.cumsum(probs[order].astype(np.float32), dtype=np.float32)
    n = next(i + 1 for i in range(V) if cum[i] >= p and i + 1 >= min_keep)
    assert_same(survivors(only("top_p", top_p=p, min_keep=min_keep), x), expect(order[:n], x))


def test_top_p_on_a_large_vocabulary_widens_past_its_first_head():
    x = crafted_logits(2, n=5000, scale=0.5)  # flat: 256 tokens hold far less than 0.95
    probs = softmax(x)
    order = np.argsort(-probs, kind="stable")
    n = int(np.searchsorted(np.cumsum(probs[order]), 0.95)) + 1
    got = survivors(only("top_p", top_p=0.95), x)
    assert abs(len(got) - n) <= 1  # float32 vs float64 cumulative sums may differ by one token
    assert set(order[: min(n, len(got)) - 1]) <= set(got)


@pytest.mark.parametrize("p", [0.05, 0.2, 0.9])
def test_min_p(p):
    x = crafted_logits(3)
    keep = np.flatnonzero(x >= x.max() + math.log(p))
    assert_same(survivors(only("min_p", min_p=p), x), expect(keep, x))


def test_min_p_respects_min_keep():
    x = crafted_logits(3)
    got = survivors(only("min_p", min_p=0.99, min_keep=4), x)
    assert set(got) == set(np.argsort(-x, kind="stable")[:4].tolist())


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_typical_p(p):
    x = crafted_logits(4)
    probs = softmax(x).astype(np.float32)
    entropy = float(-(probs * np.log(probs)).sum())
    shifted = np.abs(-np.log(probs) - entropy)
    order = np.argsort(shifted, kind="stable")
    cum = np.cumsum(probs[order])
    n = int(np.argmax(cum > p)) + 1
    assert_same(survivors(only("typ_p", typical_p=p), x), expect(order[:n], x))


@pytest.mark.parametrize("n", [0.5, 1.0, 2.0])
def test_top_n_sigma(n):
    x = crafted_logits(5)
    keep = np.flatnonzero(x >= x.max() - n * x.astype(np.float64).std())
    assert_same(survivors(only("top_n_sigma", top_n_sigma=n), x), expect(keep, x), tol=1e-4)


def test_xtc_removes_all_but_the_least_likely_above_threshold():
    x = np.array([5.0, 4.8, 4.6, 1.0, 0.5, 0.0, -1.0, -2.0], np.float32)
    probs = softmax(x)
    above = np.flatnonzero(probs >= 0.1)
    assert len(above) == 3
    keep = [i for i in range(len(x)) if i not in above[:-1]]
    assert_same(survivors(only("xtc", xtc_probability=1.0, xtc_threshold=0.1), x), expect(keep, x))
    # above 0.5 the threshold disables it; probability 0 too
    assert len(survivors(only("xtc", xtc_probability=1.0, xtc_threshold=0.6), x)) == len(x)
    assert len(survivors(only("xtc", xtc_probability=0.0, xtc_threshold=0.1), x)) == len(x)


# -- temperature --------------------------------------------------------------------

@pytest.mark.parametrize("t", [0.3, 1.0, 2.5])
def test_temperature_scales_the_logits(t):
    x = crafted_logits(6)
    assert_same(survivors(only("temperature", temperature=t), x), expect(range(V), x / t))


def test_temperature_zero_is_greedy_and_spends_one_draw():
    x = crafted_logits(7)
    s = Sampler(SamplingParams(temperature=0.0), V)
    assert all(s(x) == int(np.argmax(x)) for _ in range(5))
    ids, ps = s.chain.ranked()
    assert ps[0] == pytest.approx(1.0)


def test_dynamic_temperature_follows_the_entropy():
    x = crafted_logits(8)
    t, rng_, exp_ = 1.0, 0.5, 1.3
    probs = softmax(x)
    ent = float(-(probs * np.log(probs)).sum())
    dyn = max(0.0, t - rng_) + 2 * rng_ * (ent / math.log(V)) ** exp_
    got = survivors(only("temperature", temperature=t, dynatemp_range=rng_, dynatemp_exponent=exp_), x)
    assert_same(got, expect(range(V), x / dyn), tol=1e-4)


# -- penalties, DRY, logit bias -------------------------------------------------------

def test_repetition_penalties_count_the_window():
    x = crafted_logits(9)
    history = [3, 3, 7, 9, 3, 12, 7]
    rp, fp, pp, last_n = 1.3, 0.2, 0.5, 5
    want = x.astype(np.float64).copy()
    window = history[-last_n:]
    for t in set(window):
        c = window.count(t)
        want[t] = want[t] * rp if want[t] <= 0 else want[t] / rp
        want[t] -= c * fp + pp
    got = survivors(only("penalties", repeat_penalty=rp, frequency_penalty=fp, presence_penalty=pp,
                         repeat_last_n=last_n), x, history)
    assert_same(got, expect(range(V), want), tol=1e-5)


def test_penalties_with_repeat_last_n_minus_one_cover_the_context():
    x = np.zeros(V, np.float32)
    history = [5] + [1] * 100
    s = Sampler(only("penalties", frequency_penalty=1.0, repeat_last_n=-1), V, n_ctx=200)
    s.accept(history)
    s.sample(x)
    got = dict(zip(*[a.tolist() for a in s.chain.ranked()]))
    assert got[5] < got[0] and got[1] < got[5]  # token 5, 100 tokens back, still counts


def dry_reference(history, logits, mult, base, allowed, last_n, breakers=()):
    """Naive DRY: for each earlier position, the length of the match between the text
    before it and the end of the text; the token that followed gets the penalty."""
    h = history[-last_n:]
    n = len(h)
    out = logits.astype(np.float64).copy()
    if n <= allowed:
        return out
    limit = n
    for i in range(n):  # newest first: the most recent breaker bounds the scan
        if h[n - 1 - i] in breakers:
            limit = i
            break
    best: dict[int, int] = {}
    for end in range(n - 1):  # h[end] is followed by h[end + 1]
        length = 0
        while length <= end and h[end - length] == h[n - 1 - length]:
            length += 1
        length = min(length, limit)
        if length >= allowed:
            nxt = h[end + 1]
            best[nxt] = max(best.get(nxt, 0), length)
    for t, length in best.items():
        if t not in breakers:
            out[t] -= mult * base ** (length - allowed)
    return out


@pytest.mark.parametrize("history", [
    [1, 2, 3, 4, 1, 2, 3],
    [5, 6, 5, 6, 5, 6, 5],
    [1, 2, 3, 9, 1, 2, 3, 8, 1, 2, 3],
    [7, 7, 7, 7, 7, 7],
    [1, 2, 3, 4, 5, 6, 7, 8],
])
def test_dry_matches_a_naive_reference(history):
    x = crafted_logits(10)
    p = only("dry", dry_multiplier=0.8, dry_base=1.75, dry_allowed_length=2, dry_penalty_last_n=64)
    got = survivors(p, x, history)
    assert_same(got, expect(range(V), dry_reference(history, x, 0.8, 1.75, 2, 64)), tol=1e-5)


def test_dry_sequence_breaker_stops_the_scan():
    x = crafted_logits(11)
    history = [1, 2, 3, 40, 1, 2, 3]
    cfg = _native.SamplingConfig()
    cfg.n_vocab, cfg.seed, cfg.order = V, 1, [_native.SamplerKind.dry]
    cfg.dry_multiplier, cfg.dry_base, cfg.dry_allowed_length, cfg.dry_penalty_last_n = 0.8, 1.75, 2, 64
    cfg.dry_breakers = [(40, [])]
    chain = _native.SamplerChain(cfg)
    chain.accept_many(history)
    chain.sample(x)
    ids, ps = chain.ranked()
    got = {int(i): float(p) for i, p in zip(ids, ps)}
    want = expect(range(V), dry_reference(history, x, 0.8, 1.75, 2, 64, breakers=(40,)))
    assert_same(got, want, tol=1e-5)
    # without the breaker, token 4 would be penalised
    assert got[4] == pytest.approx(want[4])


def test_logit_bias_and_bans():
    x = np.zeros(V, np.float32)
    p = only(logit_bias=[(3, 2.0), (5, -math.inf), (V + 10, 5.0)])
    got = survivors(p, x)
    assert 5 not in got
    assert got[3] == pytest.approx(math.exp(2) / (math.exp(2) + V - 2), rel=1e-5)


# -- the chain ------------------------------------------------------------------------

def test_default_chain_order_and_names():
    s = Sampler(SamplingParams(), V)
    assert s.chain.names == ["penalties", "dry", "top-n-sigma", "top-k", "typical", "top-p", "min-p", "xtc",
                             "temp-ext", "dist"]
    assert SamplingParams().samplers == DEFAULT_SAMPLERS


def test_order_changes_the_result():
    x = crafted_logits(12)
    a = survivors(SamplingParams(samplers=("top_k", "temperature"), top_k=5, temperature=3.0), x)
    b = survivors(SamplingParams(samplers=("temperature", "min_p"), min_p=0.2, temperature=3.0), x)
    c = survivors(SamplingParams(samplers=("min_p", "temperature"), min_p=0.2, temperature=3.0), x)
    assert len(a) == 5
    assert len(b) > len(c)  # min_p after flattening keeps more


def test_mirostat_v2_cuts_by_surprise_and_adapts():
    x = crafted_logits(13)
    tau = 3.0
    p = SamplingParams(mirostat=2, mirostat_tau=tau, mirostat_eta=0.5, temperature=1.0, seed=3)
    probs = softmax(x)
    order = np.argsort(-probs, kind="stable")
    keep = [i for i in order if -math.log2(probs[i]) <= 2 * tau]  # mu starts at 2 tau
    assert set(survivors(p, x)) == set(keep)
    s = Sampler(p, V)
    assert s.chain.names == ["temp-ext", "mirostat-v2"]
    surprise = []
    for _ in range(600):
        tok = s(x)
        ids, ps = s.chain.ranked()
        surprise.append(-math.log2(float(ps[list(ids).index(tok)])))
    # mu adapts until the observed surprise (in the cut distribution) averages tau;
    # a fixed mu = 6 would keep it near 3.7
    assert abs(np.mean(surprise[100:]) - tau) < 0.3


def test_mirostat_v1_keeps_a_top_k_and_is_seeded():
    x = crafted_logits(14)
    p = SamplingParams(mirostat=1, mirostat_tau=5.0, seed=9)
    got = survivors(p, x)
    order = np.argsort(-x, kind="stable")
    assert set(got) == set(order[: len(got)].tolist())
    a, b = Sampler(p, V), Sampler(p, V)
    assert [a(x) for _ in range(30)] == [b(x) for _ in range(30)]


def test_same_seed_same_tokens_and_random_seed_reported():
    x = crafted_logits(15, scale=1.0)
    p = SamplingParams(seed=1234, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0)
    a, b = Sampler(p, V), Sampler(p, V)
    ta = [a(x) for _ in range(100)]
    assert ta == [b(x) for _ in range(100)]
    c = Sampler(p.replace(seed=99), V)
    assert ta != [c(x) for _ in range(100)]
    r = Sampler(p.replace(seed=-1), V)
    assert r.seed != 0xFFFFFFFF
    again = Sampler(p.replace(seed=r.seed), V)
    assert [r(x) for _ in range(50)] == [again(x) for _ in range(50)]
    a.reset()
    assert [a(x) for _ in range(100)] == ta


def test_the_draw_follows_the_distribution():
    x = np.log(np.array([0.4, 0.3, 0.15, 0.1, 0.05], np.float32))
    s = Sampler(SamplingParams(samplers=(), seed=5), len(x))
    n = 20000
    counts = np.bincount([s.sample(x) for _ in range(n)], minlength=len(x))
    expected = n * np.exp(x.astype(np.float64))
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 18.47  # 4 degrees of freedom, p = 0.001


def test_a_filter_is_applied_only_when_the_draw_breaks_it():
    x = crafted_logits(16, scale=1.0)
    allowed = np.zeros(V, np.uint8)
    allowed[[2, 9, 33]] = 1
    filt = _native.MaskFilter(allowed)
    s = Sampler(SamplingParams(seed=4, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0), V)
    toks = [s.sample(x, filt) for _ in range(200)]
    assert set(toks) <= {2, 9, 33} and len(set(toks)) == 3
    everything = _native.MaskFilter(np.ones(V, np.uint8))
    a, b = Sampler(s.params, V), Sampler(s.params, V)
    assert [a.sample(x, everything) for _ in range(50)] == [b.sample(x) for _ in range(50)]


def test_reported_probabilities_before_and_after_the_chain():
    x = crafted_logits(17)
    s = Sampler(SamplingParams(seed=2, top_k=3, n_probs=5), V)
    tok = s.sample(x)
    pre = s.probs(x, tok)
    full = softmax(x)
    order = np.argsort(-x, kind="stable")
    assert [i for i, _ in pre.top] == order[:5].tolist()
    assert pre.prob == pytest.approx(full[tok], rel=1e-5)
    post = Sampler(SamplingParams(seed=2, top_k=3, n_probs=5, post_sampling_probs=True), V)
    tok = post.sample(x)
    got = post.probs(x, tok)
    assert len(got.top) == 3  # only what the chain kept
    assert sum(p for _, p in got.top) == pytest.approx(1.0, abs=1e-5)
    assert got.prob == dict(got.top)[tok]


def test_bad_logits_shape_is_refused():
    s = Sampler(SamplingParams(), V)
    with pytest.raises(ValueError):
        s.sample(np.zeros(V + 1, np.float32))


# -- request rules --------------------------------------------------------------------

def test_request_soft_limits_clamp_and_hard_limits_raise():
    p = SamplingParams.from_request({"top_p": 1.7, "min_p": -0.2, "temperature": -1, "mirostat": 7, "top_k": -5})
    assert (p.top_p, p.min_p, p.temperature, p.mirostat, p.top_k) == (1.0, 0.0, 0.0, 2, 0)
    for field, value in (("repeat_last_n", -2), ("dry_allowed_length", -1), ("min_keep", -3),
                         ("dry_penalty_last_n", -5)):
        with pytest.raises(SamplingError, match=field):
            SamplingParams.from_request({field: value})
    assert SamplingParams.from_request({"repeat_last_n": -1}).repeat_last_n == -1
    with pytest.raises(SamplingError, match="top_k"):
        SamplingParams.from_request({"top_k": "many"})
    with pytest.raises(SamplingError, match="ignore_eos"):
        SamplingParams.from_request({"ignore_eos": 1})


def test_request_nulls_mean_defaults_and_defaults_carry_over():
    base = SamplingParams(temperature=0.3, top_k=7)
    p = SamplingParams.from_request({"temperature": None, "top_p": 0.5}, base)
    assert (p.temperature, p.top_k, p.top_p) == (0.3, 7, 0.5)
    assert SamplingParams.from_request({"dry_base": 0.5}).dry_base == 1.75
    assert SamplingParams.from_request({"seed": -1}).seed == -1
    assert SamplingParams.from_request({"seed": 42}).seed == 42
    assert SamplingParams.from_request({"logprobs": 3}).n_probs == 3
    assert SamplingParams.from_request({"logprobs": True}).n_probs == 0


def test_samplers_field_names_and_chars():
    assert parse_samplers("edskypmxt") == DEFAULT_SAMPLERS
    assert parse_samplers(["Top-K", "nucleus", "temp", "minp", "bogus"]) == ("top_k", "top_p", "temperature",
                                                                              "min_p")
    with pytest.raises(SamplingError):
        parse_samplers(42)
    with pytest.raises(SamplingError):
        SamplingParams.from_request({"dry_sequence_breakers": []})


def test_logit_bias_forms(tokenizer):
    tok = tokenizer
    ids = tok.tokenize(" hello", add_special=False)
    p = SamplingParams.from_request({"logit_bias": [[15, 1.5], [16, False], [" hello", -2], [10**9, 3], "junk"]},
                                    tokenizer=tok)
    assert p.logit_bias == [(15, 1.5), (16, -math.inf)] + [(t, -2.0) for t in ids]
    p = SamplingParams.from_request({"logit_bias": {"15": 1.5, "16": False, " hello": -2}}, tokenizer=tok)
    assert p.logit_bias == [(15, 1.5), (16, -math.inf)] + [(t, -2.0) for t in ids]
    p = SamplingParams.from_request({"ignore_eos": True}, tokenizer=tok)
    assert {t for t, b in p.logit_bias if b == -math.inf} == set(tok.eog_ids)
    with pytest.raises(SamplingError, match="logit_bias"):
        SamplingParams.from_request({"logit_bias": 5}, tokenizer=tok)


@pytest.mark.parametrize("vocab", ["gpt-2", "llama-spm"])
def test_dry_breakers_from_a_vocabulary(vocab):
    tok = load_vocab(vocab)
    breakers = ["\n", ": ", "é"]
    got = dry_breakers(tok, breakers)
    texts = {t: tok.detokenize([t], unparse_special=True).encode("utf-8", "surrogateescape")
             for t in range(tok.n_vocab)}
    want = set()
    for b in (x.encode() for x in breakers):
        for t, w in texts.items():
            if b in w:
                want.add((t, ()))
            else:
                for j in range(1, min(len(b), len(w) + 1)):
                    if w.endswith(b[:j]):
                        want.add((t, tuple(tok.tokenize(b[j:].decode("utf-8", "surrogateescape"),
                                                        add_special=False))))
    assert {(t, tuple(tail)) for t, tail in got} == want
    assert any(tail for _, tail in got)  # some token ends with ":" and needs " " after it
    assert dry_breakers(tok, breakers) is got  # cached per tokenizer


def load_vocab(name: str):
    from pathlib import Path

    from pyllama.gguf_file import GGUFFile
    from pyllama.tokenizer import Tokenizer
    path = Path(__file__).resolve().parents[1] / "data" / "tokenizer-vectors" / f"ggml-vocab-{name}.gguf"
    return Tokenizer.from_gguf(GGUFFile(path))


@pytest.fixture(scope="module")
def tokenizer():
    return load_vocab("gpt-2")
