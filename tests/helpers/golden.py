"""Greedy continuations of the reference prompts, compared with llama.cpp's.

For each prompt we record, step by step while our continuation equals the
reference: the top-5 log-probability error against the reference's top-5,
and at the first departure the gap between our top token and the
reference's token (in our log-probabilities).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pyllama import Batch, Llama
from pyllama.sampling import log_softmax

DATA = Path(__file__).resolve().parents[1] / "data" / "reference"
MODELS = {"smollm2-135m": "smollm2-135m-instruct-q4_1", "gemma3-270m": "gemma-3-270m-q4_k_m"}


def completion_records(model: str) -> list[dict]:
    lines = (DATA / f"{MODELS[model]}.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "completion"]


@dataclass
class Outcome:
    prompt: str
    n_prompt: int
    ref_n_prompt: int
    tokens: list[int] = field(default_factory=list)
    ref_tokens: list[int] = field(default_factory=list)
    departure: int | None = None    # first step where our token differs
    gap: float = 0.0                # our top logprob - our logprob of the reference token there
    errors: list[float] = field(default_factory=list)  # per step before departure: mean |top-5 error|

    @property
    def matches(self) -> bool:
        return self.departure is None

    @property
    def mean_error(self) -> float:
        return float(np.mean(self.errors)) if self.errors else 0.0


class _Tracker:
    def __init__(self, rec: dict, n_prompt: int, eog):
        self.rec, self.eog = rec, eog
        self.out = Outcome(rec["prompt"], n_prompt, int(rec["n_prompt_tokens"]), ref_tokens=list(rec["tokens"]))
        self.n_steps = len(rec["tokens"]) + (1 if rec["stop_type"] == "eos" else 0)
        self.done = False
        self.aligned = True

    def step(self, logits: np.ndarray) -> int:
        s = len(self.out.tokens)
        tok = int(np.argmax(logits))
        ref = self.rec["tokens"][s] if s < len(self.rec["tokens"]) else None
        if self.out.departure is None:
            lp = log_softmax(logits)
            probs = self.rec["probs"]
            # probs can be shorter than tokens (llama-server merges pieces of one
            # character); they are used while they line up with the tokens
            if s < len(probs) and ref is not None and probs[s]["id"] == ref and self.aligned:
                top = probs[s]["top"]
                self.out.errors.append(float(np.mean([abs(lp[t] - v) for t, v in top])))
            else:
                self.aligned = False
            ref_is_eos = ref is None and self.eog(tok)
            if tok != ref and not ref_is_eos:
                self.out.departure = s
                if ref is not None:
                    self.out.gap = float(lp[tok] - lp[ref])
        self.out.tokens.append(tok)
        if len(self.out.tokens) >= self.n_steps or self.eog(tok) or self.out.departure is not None:
            self.done = True
        return tok


def greedy_outcomes(llm: Llama, records: list[dict], *, batched: bool) -> list[Outcome]:
    """Greedy continuations of every record, one at a time or as sequences of one batch."""
    prompts = [llm.tokenize(r["prompt"]) for r in records]
    trackers = [_Tracker(r, len(p), llm.tokenizer.is_eog) for r, p in zip(records, prompts)]
    groups = [list(range(len(records)))] if batched else [[i] for i in range(len(records))]
    for group in groups:
        llm.kv.clear()
        b = Batch()
        for seq, i in enumerate(group):
            b.add_sequence(prompts[i], 0, seq)
        logits = llm.decode(b)
        pos = {i: len(prompts[i]) for i in group}
        live = list(group)
        rows = dict(zip(group, logits))
        while live:
            b = Batch()
            nxt = []
            for i in live:
                tok = trackers[i].step(rows[i])
                if not trackers[i].done:
                    b.add(tok, pos[i], group.index(i), True)
                    pos[i] += 1
                    nxt.append(i)
            live = nxt
            if live:
                rows = dict(zip(live, llm.decode(b)))
    return [t.out for t in trackers]
