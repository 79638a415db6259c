"""llama.cpp's adaptive-p sampler (--adaptive-target, --adaptive-decay; run when
`samplers` names adaptive_p): the reshaped distribution against numpy, the moving
target, and the plain draw of a negative target."""

from __future__ import annotations

import numpy as np

from pyllama.sampling import Sampler, SamplingParams, parse_samplers

LOGITS = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))


def reshaped(p: np.ndarray, target: float) -> np.ndarray:
    """llama.cpp's transform: logit = 5 - 10 d^2 / (1 + d), d = |p - target| / 0.3; then the softmax."""
    d = np.abs((p - target) / 0.3)
    logit = 5 - 10 * d * d / (1 + d)
    e = np.exp(logit - logit.max())
    return e / e.sum()


def chain(target: float, decay: float = 0.9, seed: int = 7) -> Sampler:
    return Sampler(SamplingParams(samplers=("adaptive_p",), adaptive_target=target, adaptive_decay=decay,
                                  seed=seed, temperature=1.0), 4)


def ranked(s: Sampler) -> np.ndarray:
    ids, ps = s.chain.ranked()
    out = np.zeros(4)
    out[np.asarray(ids)] = ps
    return out


def test_names_and_letter():
    assert parse_samplers(["top_k", "adaptive-p"]) == ("top_k", "adaptive_p")
    assert parse_samplers("ka") == ("top_k", "adaptive_p")


def test_the_distribution_is_reshaped_around_the_target():
    p = np.exp(LOGITS) / np.exp(LOGITS).sum()
    s = chain(0.3)
    s.sample(LOGITS)
    np.testing.assert_allclose(ranked(s), reshaped(p, 0.3), rtol=1e-5)
    counts = np.bincount([chain(0.3, seed=i).sample(LOGITS) for i in range(600)], minlength=4) / 600
    assert counts.argmax() == 1 and np.abs(counts - reshaped(p, 0.3)).max() < 0.07


def test_the_target_moves_against_the_chosen_tokens_probabilities():
    p = np.exp(LOGITS) / np.exp(LOGITS).sum()
    s = chain(0.3, decay=0.5)
    tok = s.sample(LOGITS)
    s.accept(tok)
    # weighted sum and weight start at target/(1-d) and 1/(1-d); the chosen token's original p joins them
    ws, tw = p[tok] + 0.5 * 0.3 / 0.5, 1 + 0.5 / 0.5
    adapted = np.clip(2 * 0.3 - ws / tw, 0, 1)
    s.sample(LOGITS)
    np.testing.assert_allclose(ranked(s), reshaped(p, adapted), rtol=1e-5)


def test_a_negative_target_draws_from_the_probabilities():
    s = chain(-1.0)
    assert s.sample(LOGITS) in range(4)
    np.testing.assert_allclose(ranked(s), np.exp(LOGITS) / np.exp(LOGITS).sum(), rtol=1e-5)
