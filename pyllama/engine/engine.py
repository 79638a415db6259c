"""The engine thread: admits tasks into slots, builds one batch per step from the
prompt chunks of admitted tasks and one token for every generating slot
(continuous batching), decodes it, samples per slot and delivers events."""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field

from ..errors import (ContextOverflow, EngineFailed, InvalidRequest, PyllamaError, QueueFull, ShuttingDown,
                      TaskFailed, check_fits)
from ..grammar import GrammarError
from ..llama import Batch, Llama
from ..slot_file import SlotFileError, SlotState
from .bridge import original
from .embedding_job import EmbeddingJob, check_input
from .generation import Generation
from .prompt_cache import PromptCache
from .scheduler import (GENERATING, IDLE, PROMPT, BatchPlan, Work, admit, common_prefix, plan_batch, plan_reuse,
                        plan_shift)
from .slot import Slot, SlotSnapshot
from .task import (CompletionResult, ErrorEvent, FinalEvent, PartialEvent, ProgressEvent, SlotAction, Span, Task,
                   Timings)

log = logging.getLogger(__name__)


MAX_SLOTS = 64  # sequences the KV cache can tell apart (kMaxSeq, native/kv_cache.h)


@dataclass
class EngineConfig:
    n_parallel: int = 1
    n_batch: int = 2048          # tokens per step (the logical batch)
    cont_batching: bool = True
    context_shift: bool = False  # at the context end: drop old tokens and go on (else stop, truncated)
    max_queue: int = -1          # tasks waiting for a slot beyond which submit refuses (-1: no bound)
    unified_kv: bool = False     # every slot may use the whole KV cache (else each gets n_ctx / n_parallel)
    n_ctx_slot: int = 0          # > 0: each slot's context (--kv-unified-per-slot), at most the cache
    slot_prompt_similarity: float = 0.1  # a cache prefix above this share of a prompt picks the slot
    prompt_cache_mib: int = 0    # host memory for slots' prompt caches (prompt_cache.py): 0 none, -1 no limit
    cache_idle_slots: bool = False  # with a prompt cache: keep every idle slot's cache there too


@dataclass
class Stats:
    """The engine's counters since it started (for /metrics)."""

    prompt: Span = field(default_factory=Span)      # prompt tokens decoded
    predicted: Span = field(default_factory=Span)   # tokens generated
    n_prompt_cached: int = 0      # prompt tokens found in a slot's cache
    n_decode: int = 0             # batches decoded
    n_busy_slots_total: int = 0   # slots in those batches, summed
    n_tokens_max: int = 0         # the largest n_past seen


class Engine:
    """Owns `llm` from the moment start() is called; other threads only submit,
    cancel and read `snapshots` and `stats`. The policy (which task, which slot,
    what to reuse, what to decode) is the scheduler's; the engine carries out its
    plans on the model and the KV cache, samples, and delivers events. Errors
    travel as typed exceptions inside ErrorEvents; what a client is told is the server's business."""

    def __init__(self, llm: Llama, config: EngineConfig = EngineConfig()):
        if not 1 <= config.n_parallel <= MAX_SLOTS:
            raise ValueError(f"n_parallel must be between 1 and {MAX_SLOTS}")
        self.llm = llm
        self.config = config
        self.n_ctx_slot = slot_context(llm.n_ctx, config, llm.hparams.n_ctx_train)
        self.slots = [Slot(i, self.n_ctx_slot, llm.kv) for i in range(config.n_parallel)]
        self.snapshots: tuple[SlotSnapshot, ...] = tuple(s.snapshot() for s in self.slots)
        self.stats = Stats()
        mib = config.prompt_cache_mib
        self.prompt_cache = PromptCache(mib << 20 if mib > 0 else 0) if mib != 0 else None
        self._lock = original("threading", "Lock")()
        self._wake = original("threading", "Event")()
        self._pending: collections.deque[Task] = collections.deque()
        self._actions: collections.deque[SlotAction] = collections.deque()  # slot save/restore/erase, in order
        self._stop = False
        self.last_active = time.monotonic()  # when a task or action last arrived or a step last ran
        self._solo: collections.deque[int] = collections.deque()  # slots to decode alone (after a failed batch)
        self._embedding_turn = False  # with both kinds of work waiting: whose batch is next
        self.failure: str | None = None  # why the engine thread died; every task then fails at once
        self._ended = original("threading", "Event")()
        self.thread_id: int | None = None

    # -- any thread ---------------------------------------------------------------
    def start(self) -> None:
        start_new_thread = original("_thread", "start_new_thread")
        self.thread_id = start_new_thread(self._run, ())  # the engine thread's ident (original get_ident)

    def shutdown(self, wait_s: float = 0.0) -> bool:
        """Stop the engine thread (waiting tasks get ShuttingDown); True once it has
        ended (waits up to wait_s seconds for that)."""
        self._stop = True
        self._wake.set()
        return self._ended.wait(wait_s) if wait_s > 0 else self._ended.is_set()

    def submit(self, *tasks: Task) -> None:
        """Queue tasks, all or none: QueueFull past config.max_queue waiting tasks,
        stopped_error() once the engine thread has ended or is ending."""
        with self._lock:
            if self.failure is not None or self._stop:
                raise self.stopped_error()
            limit = self.config.max_queue
            if limit >= 0 and len(self._pending) + len(tasks) > limit:
                raise QueueFull(f"the server is busy: {len(self._pending)} requests are already waiting for a "
                                f"slot (limit {limit}); try again later")
            self._pending.extend(tasks)
            self.last_active = time.monotonic()
        self._wake.set()

    def submit_action(self, action: SlotAction) -> None:
        """Queue a slot action (task.SlotAction); stopped_error() once the engine has ended."""
        with self._lock:
            if self.failure is not None or self._stop:
                raise self.stopped_error()
            self._actions.append(action)
            self.last_active = time.monotonic()
        self._wake.set()

    def cancel(self, task: "Task | SlotAction") -> None:
        task.cancel()
        self._wake.set()

    def n_pending(self) -> int:
        return len(self._pending)

    def idle(self) -> bool:
        """No task running or waiting and no slot action waiting (as last seen)."""
        return not self._pending and not self._actions and not any(s.is_processing for s in self.snapshots)

    def stopped_error(self) -> PyllamaError:
        """What a task gets once the engine thread has ended: ShuttingDown when asked
        to stop, EngineFailed when it died."""
        if self.failure is None:
            return ShuttingDown("the server is shutting down")
        return EngineFailed(self.failure)

    # -- the engine thread --------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop:
                busy = any(s.state != IDLE for s in self.slots)
                if not busy and not self._pending and not self._actions:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                try:
                    self.step()
                except Exception as e:  # noqa: BLE001 - a bug outside any one task: fail the running ones
                    log.exception("engine step failed")
                    for s in self.slots:
                        if s.gen is not None:
                            self._fail(s, TaskFailed(f"engine error: {e}"))
                    self._repair()
                self._publish()
        except BaseException as e:  # the thread is ending: nobody may wait for it forever
            self.failure = f"the engine thread stopped: {type(e).__name__}: {e}"
            log.critical(self.failure)
            raise
        finally:
            try:
                self._fail_all()
            finally:
                self._publish()
                self._ended.set()

    def _publish(self) -> None:
        self.snapshots = tuple(s.snapshot() for s in self.slots)  # one assignment: readers see all or nothing

    def _fail_all(self) -> None:
        """Every running and waiting task gets an error (the thread ends)."""
        with self._lock:
            self._stop = True
            waiting, self._pending = list(self._pending), collections.deque()
            actions, self._actions = list(self._actions), collections.deque()
        error = self.stopped_error()
        running = [s.task for s in self.slots if s.gen is not None]
        for s in self.slots:
            s.release()
        for task in waiting + running + actions:
            try:
                task.deliver(ErrorEvent(error))
            except BaseException:  # noqa: BLE001 - one bad delivery must not keep the others waiting
                log.exception("delivering the final error failed")

    def step(self) -> None:
        self.last_active = time.monotonic()
        self._drop_cancelled()
        self._run_actions()
        self._admit()
        solo = self._solo[0] if self._solo else None
        plan = self._plan(solo)
        if not plan.pieces:
            if solo is not None:
                self._solo.popleft()  # that slot finished or was cancelled meanwhile
            return
        batch = Batch()
        for piece in plan.pieces:
            outs = set(piece.outputs)
            for i, t in enumerate(piece.tokens):
                batch.add(t, piece.pos + i, piece.slot, i in outs)
            self.slots[piece.slot].cache.planned(piece.tokens)
        if self.config.unified_kv:
            self._make_room(len(batch), {p.slot for p in plan.pieces})
        t0 = time.perf_counter()
        embeddings = isinstance(self.slots[plan.pieces[0].slot].gen, EmbeddingJob)
        try:
            logits = self.llm.decode(batch, embeddings=embeddings)
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the step is undone
            for piece in plan.pieces:
                self.slots[piece.slot].cache.truncate(piece.pos)
            if len(plan.pieces) > 1:  # find the culprit: each slot decodes alone next
                log.warning("decode of %d slots failed (%s); retrying them one at a time", len(plan.pieces), e)
                self._solo.extend(p.slot for p in plan.pieces if p.slot not in self._solo)
                return
            if solo is not None:
                self._solo.popleft()
            msg = f"KV cache full: {e}" if isinstance(e, ContextOverflow) else f"decode failed: {e}"
            self._fail(self.slots[plan.pieces[0].slot], TaskFailed(msg))
            self._repair()
            return
        if solo is not None:
            self._solo.popleft()
        self._account(plan, time.perf_counter() - t0)
        row = 0
        for piece in plan.pieces:
            s, n_out = self.slots[piece.slot], len(piece.outputs)
            rows, row = logits[row:row + n_out], row + n_out
            if isinstance(s.gen, EmbeddingJob):
                self._embedded(s, piece, rows)
                continue
            if piece.prompt:
                self._progress(s, piece.pos + len(piece.tokens))
            if not n_out:
                continue
            if piece.prompt:
                s.state = GENERATING
                s.gen.prompt_done()
            try:
                self._sample(s, rows[0])
            except Exception as e:  # noqa: BLE001 - this task's sampler or grammar: it alone ends
                log.warning("slot %d: sampling failed: %s", s.id, e)
                self._fail(s, task_error(e))

    def _make_room(self, n_tokens: int, busy: set[int]) -> None:
        """A unified cache is shared by every slot: when a batch lacks room, the cached
        prompts of idle slots go first, least recently used first (llama-server clears
        idle slots of a unified cache too)."""
        kv = self.llm.kv
        idle = sorted((s for s in self.slots if s.state == IDLE and s.id not in busy and s.n_past > 0),
                      key=lambda s: s.last_used)
        for s in idle:
            if kv.size - kv.n_used >= n_tokens:
                return
            log.info("slot %d: clearing its cached prompt (%d tokens) to make room in the unified KV cache",
                     s.id, s.n_past)
            s.cache.clear()

    def _embedded(self, s: Slot, piece, rows) -> None:
        """An embedding task's rows of this batch; at its prompt's end, its result (and
        the slot's cache dropped: nothing of it is reused)."""
        job = s.gen
        if len(rows):
            job.add_rows(rows)
        if piece.pos + len(piece.tokens) < len(job.prompt):
            return
        try:
            result = job.result(self.llm, s.id)
        except Exception as e:  # noqa: BLE001 - this task's pooling: it alone ends
            log.warning("slot %d: pooling failed: %s", s.id, e)
            self._fail(s, task_error(e))
            return
        s.cache.clear()
        s.release()
        job.task.deliver(FinalEvent(result))

    def _account(self, plan: BatchPlan, dt: float) -> None:
        """Counters of a decoded batch: time is shared among its tokens."""
        st, n = self.stats, plan.n_tokens
        st.n_decode += 1
        st.n_busy_slots_total += len(plan.pieces)
        for piece in plan.pieces:
            ms = dt * 1000 * len(piece.tokens) / n
            if piece.prompt:
                self.slots[piece.slot].gen.timings.prompt.add(len(piece.tokens), ms)
                st.prompt.add(len(piece.tokens), ms)
            else:
                st.predicted.ms += ms  # counted as generated once sampled
        st.n_tokens_max = max(st.n_tokens_max, max(s.n_past for s in self.slots))

    def _repair(self) -> None:
        """After a failure, trust no slot's record that the KV cache does not bear out:
        its sequence must hold exactly positions 0..n_past-1; else drop both. (An
        encoder keeps no cache: nothing to check.)"""
        if self.llm.is_encoder:
            return
        for s in self.slots:
            if not s.cache.consistent():
                log.warning("slot %d: cache record (%d tokens) and KV cache disagree; dropping both", s.id, s.n_past)
                s.cache.clear()
                if s.gen is not None:
                    self._fail(s, TaskFailed("the slot's cache was lost after an engine error"))

    def _drop_cancelled(self) -> None:
        with self._lock:
            if any(t.cancelled for t in self._pending):
                self._pending = collections.deque(t for t in self._pending if not t.cancelled)
        for s in self.slots:
            if s.gen is not None and s.task.cancelled:
                s.release()

    # -- slot actions (save / restore / erase), between steps ----------------------
    def _run_actions(self) -> None:
        """Carry out the waiting slot actions whose slot is idle, in arrival order; one
        whose slot is busy waits (llama-server defers it) without holding up the others."""
        with self._lock:
            actions = list(self._actions)
        for a in actions:
            if not a.cancelled:
                if not 0 <= a.id_slot < len(self.slots):
                    a.deliver(ErrorEvent(InvalidRequest("Invalid slot ID")))
                elif self.slots[a.id_slot].state != IDLE:
                    continue
                else:
                    try:
                        result = self._slot_action(self.slots[a.id_slot], a)
                    except Exception as e:  # noqa: BLE001 - this action alone fails
                        log.warning("slot %d: %s failed: %s", a.id_slot, a.action, e)
                        a.deliver(ErrorEvent(task_error(e)))
                    else:
                        a.deliver(FinalEvent(result))
            with self._lock:
                self._actions.remove(a)

    def _slot_action(self, s: Slot, a: SlotAction):
        if a.action == "save":
            adapters = self.llm.lora_adapters
            lora = tuple((adapters[i].fingerprint, scale) for i, scale in enumerate(s.cache.lora) if scale != 0.0)
            return SlotState(tokens=list(s.cache.tokens), state=self.llm.kv.seq_save(s.id), lora=lora)
        if a.action == "erase":
            n = s.n_past
            s.cache.clear()
            return n
        if a.action == "restore":
            return self._restore(s, a.state)
        raise InvalidRequest(f"Invalid action: {a.action}")

    def _restore(self, s: Slot, state: SlotState) -> int:
        """Replace the slot's cache with a saved one (checked whole by slot_file.unpack);
        if the KV state is refused the slot is left empty."""
        by_fingerprint = {info.fingerprint: info.id for info in self.llm.lora_adapters}
        scales = [0.0] * len(self.llm.lora_adapters)
        for fp, scale in state.lora:
            if fp not in by_fingerprint:
                raise SlotFileError("the slot file's cache was computed with a LoRA adapter that is not loaded")
            scales[by_fingerprint[fp]] = scale
        s.cache.clear()
        try:
            self.llm.kv.seq_restore(s.id, state.state)
        except ValueError as e:
            s.cache.clear()
            raise SlotFileError(f"the slot file's KV state cannot be restored: {e}") from None
        s.cache.tokens = list(state.tokens)
        s.cache.lora = self._lora_key(scales)
        if not s.cache.consistent():
            s.cache.clear()
            raise SlotFileError("the slot file's KV state does not hold exactly its tokens' positions")
        return s.n_past

    # -- the prompt cache in host memory (prompt_cache.py) ---------------------------
    def _swap_prompt(self, slot: Slot, prompt: list[int], lora: tuple) -> None:
        """As llama-server, when the slot was not chosen for its cache (or the prompt keeps
        less than half of it): keep the slot's cache in the prompt cache, then load the
        entry that serves this prompt better than the slot would, if there is one."""
        cache = slot.cache
        mine = cache.tokens if cache.lora == lora else []
        n = common_prefix(mine, prompt)
        sim = self.config.slot_prompt_similarity
        chosen_for_cache = sim > 0 and n > 0 and n / len(prompt) > sim
        if chosen_for_cache and (not cache.tokens or n / len(cache.tokens) >= 0.5):
            return
        pc = self.prompt_cache
        pc.save(cache.tokens, lambda: self.llm.kv.seq_save(slot.id), cache.lora)
        entry = pc.best(mine, prompt, lora)
        if entry is None:
            return
        cache.clear()
        try:
            self.llm.kv.seq_restore(slot.id, entry.state)
        except ValueError as e:  # no room in a shared cache: the prompt is decoded again
            log.debug("slot %d: prompt cache entry not loaded: %s", slot.id, e)
            cache.clear()
            return
        cache.tokens, cache.lora = list(entry.tokens), entry.lora
        if not cache.consistent():
            cache.clear()
            return
        pc.take(entry)

    def _cache_idle_slots(self) -> None:
        """--cache-idle-slots: every idle slot's cache is kept in the prompt cache too."""
        for s in self.slots:
            if s.state == IDLE:
                self.prompt_cache.save(s.cache.tokens, lambda s=s: self.llm.kv.seq_save(s.id), s.cache.lora)

    def _lora_key(self, scales) -> tuple[float, ...]:
        """Scales by adapter id, one per loaded adapter; () when none applies (so equal
        configurations compare equal)."""
        n = len(self.llm.lora_adapters)
        key = tuple(float(x) for x in scales[:n]) + (0.0,) * max(0, n - len(scales))
        return key if any(key) else ()

    def _admit(self) -> None:
        with self._lock:
            waiting = list(self._pending)
            reserved = frozenset(a.id_slot for a in self._actions if not a.cancelled)
        started = False
        for task, slot in admit(waiting, self.slots, self.config.cont_batching, self.config.slot_prompt_similarity,
                                reserved):
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
            started = True
        if started and self.prompt_cache is not None and self.config.cache_idle_slots:
            self._cache_idle_slots()

    def _start(self, slot: Slot, task: Task) -> None:
        req = task.request
        lora = self._lora_key(req.lora)
        if self.prompt_cache is not None and req.embedding is None and req.cache_prompt and req.prompt:
            self._swap_prompt(slot, req.prompt, lora)
        if slot.cache.lora != lora:  # cells computed under other adapters are of no use
            slot.cache.clear()
            slot.cache.lora = lora
        if self.llm.lora_adapters:
            self.llm.set_lora_scales(slot.id, lora)
        if req.embedding is not None:
            check_input(self.llm, len(req.prompt), pooling=req.embedding.pooling, n_ctx=self.n_ctx_slot)
            slot.cache.clear()
            slot.start(EmbeddingJob(task, causal=not self.llm.is_encoder))
            return
        check_fits(len(req.prompt), self.n_ctx_slot)
        reuse = plan_reuse(slot.cached, req.prompt, cache_prompt=req.cache_prompt, n_cache_reuse=req.n_cache_reuse)
        slot.cache.reuse(reuse)
        slot.start(Generation(task, self.llm.tokenizer, self.llm.n_vocab, slot.n_ctx, reuse.n_cached))
        self.stats.n_prompt_cached += reuse.n_cached
        self._progress(slot, reuse.n_cached)

    def _progress(self, s: Slot, processed: int) -> None:
        """A streamed task that asked for it (return_progress) hears how far its prompt is."""
        gen = s.gen
        req = gen.task.request if gen is not None else None
        if req is None or not (req.stream and req.return_progress) or isinstance(gen, EmbeddingJob):
            return
        ms = int((time.perf_counter() - gen.t_prompt_start) * 1000)
        gen.task.deliver(ProgressEvent(len(gen.prompt), gen.n_cached, min(processed, len(gen.prompt)), ms, s.id,
                                       gen.timings_now() if req.timings_per_token else None))

    def _plan(self, solo: int | None = None) -> BatchPlan:
        """Shift full contexts, then let the scheduler plan one batch (only slot
        `solo` if given)."""
        slots = self.slots if solo is None else [self.slots[solo]]
        work = []
        for s in slots:
            if s.state == GENERATING:
                self._shift_if_full(s)
                work.append(Work(s.id, s.n_past, token=s.gen.tokens[-1]))
            elif s.state == PROMPT and isinstance(s.gen, EmbeddingJob):
                work.append(Work(s.id, s.n_past, prompt=s.gen.prompt, rows=s.gen.rows_wanted, whole=s.gen.whole))
            elif s.state == PROMPT:
                work.append(Work(s.id, s.n_past, prompt=s.gen.prompt))
        embedding = [w for w in work if w.slot in self._embedding_slots()]
        if embedding and len(embedding) < len(work):  # a batch gives logits or hidden states, not both: take turns
            self._embedding_turn = not self._embedding_turn
            work = embedding if self._embedding_turn else [w for w in work if w not in embedding]
        return plan_batch(work, self.config.n_batch)

    def _embedding_slots(self) -> set[int]:
        return {s.id for s in self.slots if isinstance(s.gen, EmbeddingJob)}

    def _shift_if_full(self, s: Slot) -> None:
        req = s.task.request
        shift = plan_shift(s.n_past, s.n_ctx, n_prompt=len(req.prompt), n_keep=req.n_keep, n_discard=req.n_discard,
                           add_bos=self.llm.tokenizer.add_bos)
        if shift is not None:
            s.cache.shift(shift.n_keep, shift.n_discard)
            s.gen.truncated = True

    def _sample(self, s: Slot, logits) -> None:
        gen = s.gen
        req = gen.task.request
        tok = gen.budget.forced_token() if gen.budget is not None else None  # reasoning over budget
        if tok is None:
            tok = gen.sampler.sample(logits, gen.grammar.filter if gen.grammar is not None else None)
        gen.sampler.accept(tok)
        if gen.grammar is not None and not gen.grammar.accept(tok):
            # a lazy grammar's trigger text that does not fit it, or a grammar that allows no token at all
            self._fail(s, TaskFailed("the generated text does not fit the grammar (the text that triggered a "
                                     "lazy grammar, or a grammar that allows no token here)"))
            return
        if gen.budget is not None:
            gen.budget.accept(tok, self.llm.tokenizer.piece(tok, True))
        probs = gen.sampler.probs(logits, tok) if req.sampling.n_probs > 0 else None
        done = gen.add_token(tok, self.llm.tokenizer.is_eog(tok), probs, n_past=s.n_past, n_ctx=s.n_ctx,
                             context_shift=self.config.context_shift)
        self.stats.predicted.n += 1
        if req.stream:
            text = gen.take_stream_text(final=done)
            if text:  # held-back text (a stop-string prefix, a split character) waits for the next token
                tokens, probs_out = gen.take_stream_tokens()
                gen.task.deliver(PartialEvent(text, tokens, probs_out, gen.n_decoded, len(gen.prompt), s.id,
                                              gen.n_cached, gen.timings_now() if req.timings_per_token else None))
        if done:
            gen.task.deliver(FinalEvent(gen.result(s.id)))
            s.release()

    def _fail(self, s: Slot, error: Exception) -> None:
        self._fail_task(s, s.task, error)

    def _fail_task(self, s: Slot, task: Task, error: Exception) -> None:
        """`task` ends with `error`; its slot forgets everything (what it holds may be half-written)."""
        task.deliver(ErrorEvent(error))
        s.cache.clear()
        s.release()
        if s.id in self._solo:
            self._solo.remove(s.id)


def slot_context(n_ctx: int, config: EngineConfig, n_ctx_train: int = 0) -> int:
    """Each slot's context, as llama-server sizes it: --kv-unified-per-slot's N, else the
    whole cache when it is unified, else an even share; capped at the model's training
    context."""
    if config.n_ctx_slot > 0:
        n = min(config.n_ctx_slot, n_ctx)
    elif config.unified_kv:
        n = n_ctx
    else:
        n = n_ctx // config.n_parallel
    if n_ctx_train > 0 and n > n_ctx_train:
        log.warning("the slot context (%d) exceeds the training context of the model (%d) - capping", n, n_ctx_train)
        n = n_ctx_train
    return n


def task_error(e: Exception) -> PyllamaError:
    """What a client is told when its own task failed on the engine thread: the
    library's own errors as they are (a grammar too costly to follow is the
    client's), anything else as a TaskFailed naming it."""
    if isinstance(e, GrammarError):
        return type(e)(f"grammar error: {e}")
    if isinstance(e, PyllamaError):
        return e
    return TaskFailed(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)


def empty_result(slot_id: int) -> CompletionResult:
    return CompletionResult(content="", tokens=[], id_slot=slot_id, n_decoded=0, n_prompt=0, n_cached=0,
                            stop_type="none", stopping_word="", truncated=False, has_new_line=False,
                            timings=Timings(), probs=[], seed=-1)
