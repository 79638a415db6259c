"""The engine thread: admits tasks into slots, builds one batch per step from the
prompt chunks of admitted tasks and one token for every generating slot
(continuous batching), decodes it, samples per slot and delivers events."""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass

from ..errors import ContextOverflow
from ..llama import Batch, Llama
from .bridge import original
from .slot import GENERATING, IDLE, PROMPT, Slot, common_prefix
from .task import CompletionResult, ErrorEvent, FinalEvent, PartialEvent, Task, Timings

log = logging.getLogger(__name__)


MAX_SLOTS = 64  # sequences the KV cache can tell apart (kMaxSeq, native/kv_cache.h)


@dataclass
class EngineConfig:
    n_parallel: int = 1
    n_batch: int = 2048          # tokens per step (the logical batch)
    cont_batching: bool = True
    context_shift: bool = False  # at the context end: drop old tokens and go on (else stop, truncated)
    max_queue: int = -1          # tasks waiting for a slot beyond which submit refuses (-1: no bound)


class QueueFull(Exception):
    """submit() refused: that many tasks already wait for a slot."""


class EngineStopped(Exception):
    """submit() refused: the engine thread is not running (stopped, or died: `failure` says why)."""


@dataclass
class Stats:
    """Counters for /metrics and /slots."""

    n_prompt_tokens: int = 0
    n_prompt_cached: int = 0
    t_prompt_s: float = 0.0
    n_predicted: int = 0
    t_predicted_s: float = 0.0
    n_decode: int = 0
    n_busy_slots_total: int = 0
    n_tokens_max: int = 0
    n_deferred: int = 0


class Engine:
    """Owns `llm` from the moment start() is called; other threads only submit and cancel."""

    def __init__(self, llm: Llama, config: EngineConfig = EngineConfig()):
        if not 1 <= config.n_parallel <= MAX_SLOTS:
            raise ValueError(f"n_parallel must be between 1 and {MAX_SLOTS}")
        self.llm = llm
        self.config = config
        self.n_ctx_slot = llm.n_ctx // config.n_parallel
        self.slots = [Slot(i, self.n_ctx_slot) for i in range(config.n_parallel)]
        self.stats = Stats()
        self._lock = original("threading", "Lock")()
        self._wake = original("threading", "Event")()
        self._pending: collections.deque[Task] = collections.deque()
        self._stop = False
        self._thread = None
        self._solo: collections.deque[int] = collections.deque()  # slots to decode alone (after a failed batch)
        self.failure: str | None = None  # why the engine thread died; every task then fails at once
        self._ended = original("threading", "Event")()

    # -- any thread ---------------------------------------------------------------
    def start(self) -> None:
        start_new_thread = original("_thread", "start_new_thread")
        start_new_thread(self._run, ())

    def shutdown(self, wait_s: float = 0.0) -> bool:
        """Stop the engine thread (waiting tasks get a 503); True once it has ended
        (waits up to wait_s seconds for that)."""
        self._stop = True
        self._wake.set()
        return self._ended.wait(wait_s) if wait_s > 0 else self._ended.is_set()

    def submit(self, *tasks: Task) -> None:
        """Queue tasks, all or none: QueueFull past config.max_queue waiting tasks,
        EngineStopped once the engine thread has ended."""
        with self._lock:
            if self.failure is not None or self._stop:
                raise EngineStopped(self.stopped_error().message)
            limit = self.config.max_queue
            if limit >= 0 and len(self._pending) + len(tasks) > limit:
                raise QueueFull(f"{len(self._pending)} requests are already waiting for a slot (limit {limit})")
            self._pending.extend(tasks)
        self._wake.set()

    def cancel(self, task: Task) -> None:
        task.cancel()
        self._wake.set()

    def n_pending(self) -> int:
        return len(self._pending)

    # -- the engine thread --------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop:
                busy = any(s.state != IDLE for s in self.slots)
                if not busy and not self._pending:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                try:
                    self.step()
                except Exception as e:  # noqa: BLE001 - a bug outside any one task: fail the running ones
                    log.exception("engine step failed")
                    for s in self.slots:
                        if s.task is not None:
                            self._fail(s, ErrorEvent(500, f"engine error: {e}", "server_error"))
                    self._repair()
        except BaseException as e:  # the thread is ending: nobody may wait for it forever
            self.failure = f"the engine thread stopped: {type(e).__name__}: {e}"
            log.critical(self.failure)
            raise
        finally:
            try:
                self._fail_all()
            finally:
                self._ended.set()

    def stopped_error(self) -> ErrorEvent:
        """What a task gets once the engine thread has ended: 503 on shutdown, 500 if it died."""
        if self.failure is None:
            return ErrorEvent(503, "the server is shutting down", "unavailable_error")
        return ErrorEvent(500, self.failure, "server_error")

    def _fail_all(self) -> None:
        """Every running and waiting task gets an error (the thread ends)."""
        with self._lock:
            self._stop = True
            waiting, self._pending = list(self._pending), collections.deque()
        event = self.stopped_error()
        running = [s.task for s in self.slots if s.task is not None]
        for s in self.slots:
            s.release()
        for task in waiting + running:
            try:
                task.deliver(event)
            except BaseException:  # noqa: BLE001 - one bad delivery must not keep the others waiting
                log.exception("delivering the final error failed")

    def step(self) -> None:
        self._drop_cancelled()
        self._admit()
        solo = self._solo[0] if self._solo else None
        batch, owners, marks = self._plan(solo)
        if not owners:
            if solo is not None:
                self._solo.popleft()  # that slot finished or was cancelled meanwhile
            return
        t0 = time.perf_counter()
        try:
            logits = self.llm.decode(batch)
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the step is undone
            self._undo(owners, marks)
            if len(owners) > 1:  # find the culprit: each slot decodes alone next
                log.warning("decode of %d slots failed (%s); retrying them one at a time", len(owners), e)
                self._solo.extend(s.id for s, _ in owners if s.id not in self._solo)
                return
            s = owners[0][0]
            if solo is not None:
                self._solo.popleft()
            msg = f"KV cache full: {e}" if isinstance(e, ContextOverflow) else f"decode failed: {e}"
            self._fail(s, ErrorEvent(500, msg, "server_error"))
            self._repair()
            return
        if solo is not None:
            self._solo.popleft()
        dt = time.perf_counter() - t0
        self.stats.n_decode += 1
        self.stats.n_busy_slots_total += len({s.id for s, _ in owners})
        n_prompt = sum(n for s, n in owners if s.state == PROMPT)
        n_gen = len(batch) - n_prompt
        if n_prompt:
            self.stats.t_prompt_s += dt * n_prompt / len(batch)
        if n_gen:
            self.stats.t_predicted_s += dt * n_gen / len(batch)
        row = 0
        for s, n in owners:
            if s.state == PROMPT:
                s.timings.prompt_ms += dt * 1000 * n / len(batch)
                if s.n_past < len(s.prompt):
                    continue  # more prompt to go
                s.state = GENERATING
                s.t_first = time.perf_counter()
            try:
                self._sample(s, logits[row])
            except Exception as e:  # noqa: BLE001 - this task's sampler or grammar: it alone ends
                log.warning("slot %d: sampling failed: %s", s.id, e)
                self._fail(s, task_error(e))
            row += 1

    def _undo(self, owners: list[tuple[Slot, int]], marks: dict[int, int]) -> None:
        """Take back what _plan did for a batch that was not decoded: the cells the
        decode may have written, the tokens the slots' records claim (a slot's cache
        record is its n_past tokens), the counters."""
        for s, n in owners:
            n_past = marks[s.id]
            self.llm.kv.seq_rm(s.id, n_past, -1)
            del s.cache[n_past:]
            s.n_past = n_past
            if s.state == PROMPT:
                s.timings.prompt_n -= n
                self.stats.n_prompt_tokens -= n

    def _repair(self) -> None:
        """After a failure, trust no slot's record that the KV cache does not bear out:
        its sequence must hold exactly positions 0..len(cache)-1; else drop both."""
        kv = self.llm.kv
        for s in self.slots:
            n = len(s.cache)
            if kv.seq_n_cells(s.id) != n or kv.seq_pos_max(s.id) != n - 1:
                log.warning("slot %d: cache record (%d tokens) and KV cache disagree; dropping both", s.id, n)
                kv.seq_rm(s.id, -1, -1)
                s.cache = []
                if s.state != IDLE and s.task is not None:
                    self._fail(s, ErrorEvent(500, "the slot's cache was lost after an engine error",
                                             "server_error"))

    def _drop_cancelled(self) -> None:
        with self._lock:
            if any(t.cancelled for t in self._pending):
                self._pending = collections.deque(t for t in self._pending if not t.cancelled)
        for s in self.slots:
            if s.task is not None and s.task.cancelled:
                s.release()

    def _admit(self) -> None:
        if not self.config.cont_batching and any(s.state == GENERATING for s in self.slots):
            return
        with self._lock:
            waiting = list(self._pending)
        for task in waiting:
            slot = self._choose_slot(task)
            if slot is None:
                continue
            with self._lock:
                self._pending.remove(task)
            if not task.request.prompt:  # llama-server: an empty prompt gets an empty answer, cache untouched
                task.deliver(FinalEvent(empty_result(slot.id)))
                continue
            try:
                self._start(slot, task)
            except Exception as e:  # noqa: BLE001 - this task's setup (sampler, grammar, DRY): it alone fails
                log.warning("slot %d: starting a task failed: %s", slot.id, e)
                self._fail_task(slot, task, task_error(e))

    def _choose_slot(self, task: Task) -> Slot | None:
        req = task.request
        if req.id_slot >= 0:
            s = self.slots[req.id_slot % len(self.slots)]
            return s if s.state == IDLE else None
        idle = [s for s in self.slots if s.state == IDLE]
        if not idle:
            return None
        if req.cache_prompt:
            best = max(idle, key=lambda s: (common_prefix(s.cache, req.prompt), -s.last_used))
            if common_prefix(best.cache, req.prompt) > 0:
                return best
        return min(idle, key=lambda s: s.last_used)

    def _start(self, slot: Slot, task: Task) -> None:
        req = task.request
        if len(req.prompt) >= self.n_ctx_slot:
            task.deliver(ErrorEvent(400, f"request ({len(req.prompt)} tokens) exceeds the available context size "
                                         f"({self.n_ctx_slot} tokens), try increasing it",
                                    "exceed_context_size_error",
                                    {"n_prompt_tokens": len(req.prompt), "n_ctx": self.n_ctx_slot}))
            return
        n_cached = common_prefix(slot.cache, req.prompt) if req.cache_prompt else 0
        if req.cache_prompt and req.n_cache_reuse > 0:
            n_cached = self._reuse_chunks(slot, req.prompt, n_cached, req.n_cache_reuse)
        n_cached = min(n_cached, len(req.prompt) - 1)  # the last prompt token is decoded again for its logits
        self.llm.kv.seq_rm(slot.id, n_cached, -1)
        slot.cache = slot.cache[:n_cached]
        slot.start(task, self.llm.tokenizer, self.llm.n_vocab, n_cached)
        self.stats.n_prompt_cached += n_cached

    def _reuse_chunks(self, slot: Slot, prompt: list[int], n_past: int, min_chunk: int) -> int:
        """llama-server's --cache-reuse: past the common prefix, runs of at least
        min_chunk cached tokens that the prompt repeats further on are moved to
        their new positions (seq_add re-rotates K) instead of being decoded again."""
        kv, cache = self.llm.kv, slot.cache
        head_c = head_p = n_past
        while head_c < len(cache) and head_p < len(prompt):
            n = 0
            while head_c + n < len(cache) and head_p + n < len(prompt) and cache[head_c + n] == prompt[head_p + n]:
                n += 1
            if n >= min_chunk:
                kv.seq_rm(slot.id, head_p, head_c)
                kv.seq_add(slot.id, head_c, head_c + n, head_p - head_c)
                cache[head_p:head_p + n] = cache[head_c:head_c + n]
                n_past += n
                head_c += n
                head_p += n
            else:
                head_c += 1
        return n_past

    def _plan(self, solo: int | None = None) -> tuple[Batch, list[tuple[Slot, int]], dict[int, int]]:
        """One token for every generating slot, then prompt chunks within n_batch (only
        slot `solo` if given). Also each planned slot's n_past before."""
        batch = Batch()
        owners: list[tuple[Slot, int]] = []
        marks: dict[int, int] = {}
        slots = self.slots if solo is None else [self.slots[solo]]
        for s in slots:
            if s.state == GENERATING and s.n_past + 1 >= s.n_ctx:
                self._shift(s)
            if s.state == GENERATING:
                marks[s.id] = s.n_past
                tok = s.tokens[-1]
                batch.add(tok, s.n_past, s.id, True)
                s.cache.append(tok)
                s.n_past += 1
                owners.append((s, 1))
        budget = self.config.n_batch - len(batch)
        for s in slots:
            if s.state != PROMPT or budget <= 0:
                continue
            marks[s.id] = s.n_past
            chunk = s.prompt[s.n_past:s.n_past + budget]
            last = s.n_past + len(chunk) == len(s.prompt)
            for i, t in enumerate(chunk):
                batch.add(t, s.n_past + i, s.id, last and i == len(chunk) - 1)
            s.cache.extend(chunk)
            s.n_past += len(chunk)
            s.timings.prompt_n += len(chunk)
            self.stats.n_prompt_tokens += len(chunk)
            budget -= len(chunk)
            owners.append((s, len(chunk)))
        self.stats.n_tokens_max = max(self.stats.n_tokens_max, max((s.n_past for s in self.slots), default=0))
        # rows of logits come back in batch order: generating slots first, then finished prompts
        return batch, owners, marks

    def _shift(self, s: Slot) -> None:
        """llama-server's context shift: keep n_keep tokens (plus BOS), drop n_discard
        after them (default half the rest), slide the remainder down."""
        req = s.task.request
        n_keep = len(req.prompt) if req.n_keep < 0 else req.n_keep
        if self.llm.tokenizer.add_bos:
            n_keep += 1
        n_keep = min(s.n_ctx - 4, n_keep)
        n_left = s.n_past - n_keep
        n_discard = req.n_discard if req.n_discard else n_left // 2
        n_discard = max(0, min(n_discard, max(0, n_left - 1)))
        kv = self.llm.kv
        kv.seq_rm(s.id, n_keep, n_keep + n_discard)
        kv.seq_add(s.id, n_keep + n_discard, s.n_past, -n_discard)
        s.shift_context(n_keep, n_discard)

    def _sample(self, s: Slot, logits) -> None:
        req = s.task.request
        tok = s.sampler.sample(logits, s.grammar.filter if s.grammar is not None else None)
        s.sampler.accept(tok)
        if s.grammar is not None and not s.grammar.accept(tok):
            # a lazy grammar's trigger text that does not fit it, or a grammar that allows no token at all
            self._fail(s, ErrorEvent(500, "the generated text does not fit the grammar (the text that triggered a "
                                          "lazy grammar, or a grammar that allows no token here)", "server_error"))
            return
        probs = s.sampler.probs(logits, tok) if req.sampling.n_probs > 0 else None
        done = s.add_token(tok, self.llm.tokenizer.is_eog(tok), probs, self.config.context_shift)
        self.stats.n_predicted += 1
        if req.stream:
            text = s.take_stream_text(final=done)
            if text:  # held-back text (a stop-string prefix, a split character) waits for the next token
                s.task.deliver(PartialEvent(text, s.tokens[s.sent_tokens:], s.pending_probs, s.n_decoded,
                                            len(s.prompt), s.id))
                s.sent_tokens = len(s.tokens)
                s.probs.extend(s.pending_probs)
                s.pending_probs = []
        if done:
            s.task.deliver(FinalEvent(s.result()))
            s.release()

    def _fail(self, s: Slot, event: ErrorEvent) -> None:
        self._fail_task(s, s.task, event)

    def _fail_task(self, s: Slot, task: Task, event: ErrorEvent) -> None:
        """`task` ends with `event`; its slot forgets everything (what it holds may be half-written)."""
        task.deliver(event)
        self.llm.kv.seq_rm(s.id, -1, -1)
        s.cache = []
        s.release()
        if s.id in self._solo:
            self._solo.remove(s.id)


def task_error(e: Exception) -> ErrorEvent:
    """What a client is told when its own task failed on the engine thread."""
    from ..grammar import GrammarError
    if isinstance(e, GrammarError):  # its grammar proved too costly or ambiguous to follow
        return ErrorEvent(400, f"grammar error: {e}", "invalid_request_error")
    return ErrorEvent(500, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, "server_error")


def empty_result(slot_id: int) -> CompletionResult:
    return CompletionResult(content="", tokens=[], id_slot=slot_id, n_decoded=0, n_prompt=0, n_cached=0,
                            stop_type="none", stopping_word="", truncated=False, has_new_line=False,
                            timings=Timings(), probs=[], seed=-1)
