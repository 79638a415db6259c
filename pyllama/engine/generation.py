"""One task's generation, from its start in a slot to its result: the sampler and
grammar, the generated tokens and text with stop-string detection, what has been
streamed, and the timings. It lives as long as the task; the Slot it runs in
lives as long as the server."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..grammar import GrammarState
from ..sampling import Sampler, TokenProbs
from ..tokenizer import StreamDecoder
from .reasoning_budget import BudgetState
from .task import CompletionResult, Span, Task, Timings

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer


def partial_stop(text: str, stops: list[str]) -> int:
    """Length of the longest end of text that begins some stop string (held back while
    streaming). Only places in the last len(stop)-1 characters holding the stop's first
    character are tried, each with one C-speed comparison."""
    best = 0
    for s in stops:
        if len(s) < 2:
            continue
        tail = text[-(len(s) - 1):]
        i = tail.find(s[0])
        while i >= 0 and len(tail) - i > best:
            if s.startswith(tail[i:]):
                best = len(tail) - i
                break
            i = tail.find(s[0], i + 1)
    return best


def under_indented(text: str, n_indent: int) -> int | None:
    """After a newline, a line whose text starts with less than n_indent spaces or
    tabs of indentation ends the generation: where the text is cut (after that
    indentation), or None."""
    start = text.rfind("\n") + 1
    if start == 0:
        return None  # the first line is never checked
    line = text[start:]
    indent = len(line) - len(line.lstrip(" \t"))
    if indent == len(line) or indent >= n_indent:
        return None  # only indentation so far, or enough of it
    return start + indent


class Generation:
    def __init__(self, task: Task, tokenizer: "Tokenizer", n_vocab: int, n_ctx: int, n_cached: int):
        req = task.request
        self.task = task
        self.prompt = req.prompt
        self.n_cached = n_cached         # prompt tokens found in the slot's cache
        self.sampler = Sampler(req.sampling, n_vocab, n_ctx=n_ctx, tokenizer=tokenizer,
                               dry_processed=req.dry_breakers)
        self.sampler.accept(req.prompt)
        self.grammar = GrammarState(req.grammar, tokenizer, lazy=req.grammar_lazy, trigger_tokens=req.trigger_tokens,
                                    trigger_patterns=req.trigger_patterns) if req.grammar is not None else None
        self.decoder = StreamDecoder(tokenizer, special=req.special, shown=req.preserved_tokens)
        self.budget = BudgetState(req.reasoning_budget) if req.reasoning_budget is not None else None
        self.tokens: list[int] = []
        self.n_decoded = 0
        self.text = ""
        self.n_sent = 0                  # characters of text already streamed
        self.probs: list[TokenProbs] = []
        self.pending_probs: list[TokenProbs] = []
        self.sent_tokens = 0
        self.stop_type = ""
        self.stopping_word = ""
        self.truncated = False
        self.timings = Timings(cache_n=n_cached)
        self.t_first = 0.0
        self.t_prompt_start = time.perf_counter()

    def timings_now(self) -> Timings:
        """The timings so far: the prompt's batches, and the generation up to now."""
        ms = (time.perf_counter() - self.t_first) * 1000 if self.t_first else 0.0
        return Timings(prompt=Span(self.timings.prompt.n, self.timings.prompt.ms), predicted=Span(self.n_decoded, ms),
                       cache_n=self.timings.cache_n)

    def prompt_done(self) -> None:
        self.t_first = time.perf_counter()

    def add_token(self, tok: int, is_eog: bool, probs: TokenProbs | None, *, n_past: int, n_ctx: int,
                  context_shift: bool = False) -> bool:
        """Record a sampled token; returns True when the task is finished (llama-server's order
        of checks: stop strings, context, n_predict, indentation, time limit, end of generation)."""
        req = self.task.request
        self.n_decoded += 1
        if probs is not None:
            self.pending_probs.append(probs)
        if is_eog:  # counted as decoded, but neither its id nor its text is part of the result
            self.stop_type = "eos"
            self.text += self.decoder.flush()
            return True
        self.tokens.append(tok)
        piece = self.decoder.feed(tok)
        self.text += piece
        if req.stop:
            # only the new text (and a stop's length before it) can complete a stop string
            start = max(0, len(self.text) - len(piece) - max(map(len, req.stop)))
            hits = [(self.text.find(s, start), s) for s in req.stop]
            hits = [h for h in hits if h[0] >= 0]
            if hits:
                at, word = min(hits)
                self.text = self.text[:at]
                self.stop_type, self.stopping_word = "word", word
                return True
        if not context_shift and n_past + 1 >= n_ctx:
            self.stop_type, self.truncated = "limit", True
            return True
        if req.n_predict >= 0 and self.n_decoded >= req.n_predict:
            self.stop_type = "limit"
            return True
        cut = under_indented(self.text, req.n_indent) if req.n_indent > 0 else None
        if cut is not None:
            self.text = self.text[:cut]
            self.stop_type = "limit"
            return True
        if "\n" in piece and req.t_max_predict_ms > 0 and \
                (time.perf_counter() - self.t_first) * 1000 > req.t_max_predict_ms:
            self.stop_type = "limit"
            return True
        return False

    def take_stream_text(self, final: bool) -> str:
        """The text not yet streamed, minus what might begin a stop string (unless final)."""
        end = len(self.text)
        if not final and self.task.request.stop:
            end -= partial_stop(self.text[self.n_sent:], self.task.request.stop)
        out = self.text[self.n_sent:end]
        self.n_sent = end
        return out

    def take_stream_tokens(self) -> tuple[list[int], list[TokenProbs]]:
        """The tokens and probabilities not yet streamed (sent with the text just taken)."""
        tokens, probs = self.tokens[self.sent_tokens:], self.pending_probs
        self.sent_tokens = len(self.tokens)
        self.probs.extend(probs)
        self.pending_probs = []
        return tokens, probs

    def result(self, slot_id: int) -> CompletionResult:
        now = time.perf_counter()
        self.timings.predicted = Span(self.n_decoded, (now - self.t_first) * 1000 if self.t_first else 0.0)
        self.probs.extend(self.pending_probs)
        self.pending_probs = []
        return CompletionResult(
            content=self.text, tokens=list(self.tokens), id_slot=slot_id, n_decoded=self.n_decoded,
            n_prompt=len(self.prompt), n_cached=self.n_cached, stop_type=self.stop_type or "limit",
            stopping_word=self.stopping_word, truncated=self.truncated, has_new_line="\n" in self.text,
            timings=self.timings, probs=self.probs, seed=self.sampler.seed)
