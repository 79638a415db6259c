"""Llama's high-level API, as llama-cpp-python's users know it: create_completion (and
__call__), create_chat_completion, create_embedding, returning OpenAI-shaped dicts (or,
with stream=True, iterators of chunks), and from_pretrained (a Hugging Face model).

They run on the server's engine (pyllama.engine): a private Engine thread started on
the first call owns the model from then on, so requests are scheduled, batched,
cached (a chat's earlier turns are reused) and stopped exactly as the server does it,
and the answers are built by the server's own OpenAI builders (pyllama.openai_answers).
Several threads may call at once: their requests share the engine's slots and batches
(`llm.engine_config = EngineConfig(n_parallel=4)` before the first call gives four;
the context is split among them). A caller waits on a queue; leaving a stream early
(closing it, or an exception such as KeyboardInterrupt) cancels its request.

The low-level methods (decode, eval, generate, embed, rerank) use the model directly:
calling one stops the engine first (its cache is dropped; it starts again on the next
high-level call), and is refused while high-level requests are still running.

Differences from llama-cpp-python: logprobs come in llama-server's shape
(`{"content": [{"id", "token", "bytes", "logprob", "top_logprobs": [...]}]}`, for
completions too); `grammar` is GBNF text; `suffix` (infill), `stopping_criteria`,
`logits_processor` and `tfs_z` are not supported (an error, never ignored)."""

from __future__ import annotations

import queue
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from .chat import ChatInputs, ChatSyntax, ChatTemplate, apply_chat
from .chat.task_fields import grammar_fields
from .errors import InvalidRequest
from .grammar import compile_grammar
from .openai_answers import ChatCompletion, TextCompletion
from .sampling import SamplingError, SamplingParams, dry_breakers
from .schema import schema_to_grammar
from .unpatched import original

if TYPE_CHECKING:
    from .engine import Engine, EngineConfig, TaskRequest

POLL_S = 0.25
ROLES = {"system", "user", "assistant", "tool", "developer", "function"}


@dataclass
class _Request:
    """What an answer builder reads of a request (see openai_answers)."""

    tasks: list["TaskRequest"]
    stream: bool
    include_usage: bool = False
    syntax: ChatSyntax = field(default_factory=ChatSyntax)


class CompletionAPI:
    """Mixed into Llama: the high-level API (see the module's docstring)."""

    engine_config: "EngineConfig | None" = None   # the engine's slots and batches (default: EngineConfig())
    _engine: "Engine | None" = None
    _chat_template: ChatTemplate | None = None

    # -- Hugging Face ------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, repo_id: str, filename: str | None = None, *, hf_token: str | None = None,
                        offline: bool = False, **kwargs: Any):
        """A model of a Hugging Face repository (needs huggingface_hub: pip install
        'pyllama-cpu[hf]'), fetched into its cache: `filename` is a file name or a glob
        ("*Q4_K_M.gguf"); without one, llama-server's choice for `repo_id[:quant]`
        (pyllama.hf_hub). kwargs go to the constructor."""
        from . import hf_hub
        if filename:
            repo, _ = hf_hub.split_repo_tag(repo_id)
            name = hf_hub.matching_file(repo, filename, token=hf_token, offline=offline)
            path = hf_hub.download(repo, name, token=hf_token, offline=offline)
        else:
            path = hf_hub.download(repo_id, token=hf_token, offline=offline)
        return cls(path, **kwargs)

    # -- the engine --------------------------------------------------------------------
    def _start_engine(self) -> "Engine":
        from .engine import Engine, EngineConfig
        eng = self._engine
        if eng is not None and eng.failure is None:
            return eng
        lock = self.__dict__.setdefault("_engine_lock", original("threading", "Lock")())
        with lock:
            if self._engine is None or self._engine.failure is not None:
                self.kv.clear()  # the slots start empty: what low-level calls left is not theirs
                # a weak reference: a Llama dropped without close() is collected, and its engine stops (__del__)
                eng = Engine(weakref.proxy(self), self.engine_config or EngineConfig())
                eng.start()
                self._engine = eng
        return self._engine

    def _release_engine(self) -> None:
        """Before a low-level call: stop the engine (unless called on its own thread)."""
        eng = self._engine
        if eng is None or original("_thread", "get_ident")() == eng.thread_id:
            return
        if self.__dict__.get("_open_requests"):
            raise RuntimeError("the model is running create_completion / create_chat_completion / "
                               "create_embedding requests (close their streams first); low-level calls must wait")
        eng.shutdown(wait_s=30.0)
        self._engine = None
        if self._ctx is not None:
            self.kv.clear()

    def __del__(self) -> None:
        eng = self.__dict__.get("_engine")
        if eng is not None:
            eng.shutdown()

    def _stop_engine_for_close(self) -> None:
        eng = self._engine
        if eng is not None:
            eng.shutdown(wait_s=30.0)
            self._engine = None

    def _events(self, requests: list["TaskRequest"]) -> Iterator[tuple[int, object]]:
        """(task index, event) until every task has its final event; leaving early cancels."""
        from .engine import ErrorEvent, FinalEvent, Task
        eng = self._start_engine()
        events = original("queue", "SimpleQueue")()
        tasks = [Task(r, lambda ev, i=i: events.put((i, ev))) for i, r in enumerate(requests)]
        eng.submit(*tasks)
        open_ = len(tasks)
        self._count_open(+1)
        try:
            while open_:
                try:
                    i, ev = events.get(timeout=POLL_S)
                except queue.Empty:
                    if eng.failure is not None:
                        raise eng.stopped_error() from None
                    continue
                if isinstance(ev, (FinalEvent, ErrorEvent)):
                    open_ -= 1
                yield i, ev
        finally:
            for t in tasks:
                eng.cancel(t)
            self._count_open(-1)

    def _count_open(self, delta: int) -> None:
        """Requests whose results (or streams) are still being read: low-level calls wait for none."""
        with self.__dict__.setdefault("_engine_lock", original("threading", "Lock")()):
            self.__dict__["_open_requests"] = self.__dict__.get("_open_requests", 0) + delta

    def _collect(self, requests: list["TaskRequest"]) -> list:
        from .engine import ErrorEvent, FinalEvent
        results: list = [None] * len(requests)
        for i, ev in self._events(requests):
            if isinstance(ev, ErrorEvent):
                raise ev.error
            if isinstance(ev, FinalEvent):
                results[i] = ev.result
        return results

    def _stream(self, answer, requests: list["TaskRequest"]) -> Iterator[dict]:
        """The chunks of a streamed answer (sse.answer_events' loop, without the SSE):
        an error ends the iteration by raising it."""
        from .engine import ErrorEvent, FinalEvent, PartialEvent
        started: set[int] = set()
        last = None
        for i, ev in self._events(requests):
            if isinstance(ev, ErrorEvent):
                raise ev.error
            if i not in started:
                started.add(i)
                yield from _dicts(answer.opening(i))
            if isinstance(ev, PartialEvent):
                yield from _dicts(answer.partial(i, ev))
            elif isinstance(ev, FinalEvent):
                last = ev.result
                yield from _dicts(answer.final(i, ev.result))
        yield from _dicts(answer.closing(last))

    # -- tasks -------------------------------------------------------------------------
    def _sampling(self, fields: dict, extra: dict) -> SamplingParams:
        unknown = set(extra) - _SAMPLING_FIELDS
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        body = {k: v for k, v in {**fields, **extra}.items() if v is not None}
        try:
            return SamplingParams.from_request(body, SamplingParams(), self.tokenizer)
        except SamplingError as e:
            raise InvalidRequest(str(e)) from None

    def _task(self, ids: list[int], sampling: SamplingParams, *, max_tokens: int | None, stop, stream: bool,
              grammar: str | None = None, constraint: dict | None = None, more_stops=()) -> "TaskRequest":
        from .engine import TaskRequest
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        stops = [s for s in stops if s]
        stops += [s for s in more_stops if s and s not in stops]
        kw = dict(constraint or {})
        if grammar and not kw:
            kw = {"grammar": compile_grammar(grammar, self.tokenizer), "grammar_text": grammar}
        dry = None
        if sampling.dry_multiplier != 0.0 and "dry" in sampling.samplers:
            dry = dry_breakers(self.tokenizer, sampling.dry_sequence_breakers)
        n_predict = -1 if max_tokens is None or max_tokens < 0 else int(max_tokens)
        return TaskRequest(prompt=ids, sampling=sampling, n_predict=n_predict, stop=stops, stream=stream,
                           ignore_eos=sampling.ignore_eos, dry_breakers=dry, **kw)

    def _model_name(self, model: str | None) -> str:
        return model or self.path

    # -- completions -------------------------------------------------------------------
    def create_completion(self, prompt: str | list[int], suffix: str | None = None, max_tokens: int | None = 16,
                          temperature: float = 0.8, top_p: float = 0.95, min_p: float = 0.05,
                          typical_p: float = 1.0, logprobs: int | None = None, echo: bool = False,
                          stop: str | list[str] | None = None, frequency_penalty: float = 0.0,
                          presence_penalty: float = 0.0, repeat_penalty: float = 1.0, top_k: int = 40,
                          stream: bool = False, seed: int | None = None, tfs_z: float = 1.0, mirostat_mode: int = 0,
                          mirostat_tau: float = 5.0, mirostat_eta: float = 0.1, model: str | None = None,
                          stopping_criteria=None, logits_processor=None, grammar: str | None = None,
                          logit_bias: dict | None = None, response_format: dict | None = None,
                          **sampling: Any):
        """A text completion of `prompt` (text, or token ids): an OpenAI `text_completion`
        dict, or with stream=True an iterator of its chunks. max_tokens None or -1: until
        the end of generation or of the context. `logprobs`: that many candidates per
        token. `grammar` (GBNF) or `response_format` constrain the output. Other
        llama-server sampling fields (dry_multiplier, xtc_probability, top_n_sigma,
        samplers, ...) may be given by name."""
        _unsupported(suffix=suffix, stopping_criteria=stopping_criteria, logits_processor=logits_processor,
                     tfs_z=None if tfs_z == 1.0 else tfs_z)
        if isinstance(prompt, str):
            ids = self.tokenize(prompt, add_special=True, parse_special=True)
        else:
            ids = [int(t) for t in prompt]
            if any(not 0 <= t < self.n_vocab for t in ids):
                raise InvalidRequest("Prompt contains invalid tokens")
        params = self._sampling({"temperature": temperature, "top_p": top_p, "min_p": min_p, "typical_p": typical_p,
                                 "frequency_penalty": frequency_penalty, "presence_penalty": presence_penalty,
                                 "repeat_penalty": repeat_penalty, "top_k": top_k, "seed": seed,
                                 "mirostat": mirostat_mode, "mirostat_tau": mirostat_tau,
                                 "mirostat_eta": mirostat_eta, "logit_bias": logit_bias,
                                 "n_probs": logprobs}, sampling)
        schema = _response_schema(response_format)
        if schema is not None:
            if grammar:
                raise InvalidRequest("Cannot use both response_format and grammar")
            grammar = _schema_grammar(schema)
        task = self._task(ids, params, max_tokens=max_tokens, stop=stop, stream=stream, grammar=grammar)
        req = _Request([task], stream)
        answer = TextCompletion(req, model=self._model_name(model), tokenizer=self.tokenizer, n_ctx=self.n_ctx)
        prefix = (prompt if isinstance(prompt, str) else self.detokenize(ids)) if echo else ""
        if not stream:
            out = answer.whole(self._collect([task]))
            if prefix:
                out["choices"][0]["text"] = prefix + out["choices"][0]["text"]
            return out
        return _echoed(self._stream(answer, [task]), prefix)

    def __call__(self, prompt: str | list[int], *args: Any, **kwargs: Any):
        """create_completion."""
        return self.create_completion(prompt, *args, **kwargs)

    # -- chat --------------------------------------------------------------------------
    @property
    def chat_template(self) -> ChatTemplate:
        """The chat template: the GGUF's (tokenizer.chat_template, rendered by Jinja), else
        chatml. Assign a Jinja source, a built-in format name or a ChatTemplate to change it."""
        if self._chat_template is None:
            self.chat_template = self.metadata.get("tokenizer.chat_template") or "chatml"
        return self._chat_template

    @chat_template.setter
    def chat_template(self, value: str | ChatTemplate) -> None:
        if not isinstance(value, ChatTemplate):
            tok = self.tokenizer
            value = ChatTemplate(value, bos_token=tok.tokens[tok.bos] if tok.bos >= 0 else "",
                                 eos_token=tok.tokens[tok.eos] if tok.eos >= 0 else "")
        self._chat_template = value

    def create_chat_completion(self, messages: list[dict], functions: list[dict] | None = None,
                               function_call: str | dict | None = None, tools: list[dict] | None = None,
                               tool_choice: str | dict | None = None, temperature: float = 0.2, top_p: float = 0.95,
                               top_k: int = 40, min_p: float = 0.05, typical_p: float = 1.0, stream: bool = False,
                               stop: str | list[str] | None = None, seed: int | None = None,
                               response_format: dict | None = None, max_tokens: int | None = None,
                               presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                               repeat_penalty: float = 1.0, tfs_z: float = 1.0, mirostat_mode: int = 0,
                               mirostat_tau: float = 5.0, mirostat_eta: float = 0.1, model: str | None = None,
                               logits_processor=None, grammar: str | None = None, logit_bias: dict | None = None,
                               logprobs: bool | None = None, top_logprobs: int | None = None,
                               parallel_tool_calls: bool = False, reasoning_format: str = "auto",
                               enable_thinking: bool | None = None, chat_template_kwargs: dict | None = None,
                               **sampling: Any):
        """A chat completion: an OpenAI `chat.completion` dict (message with content,
        reasoning_content and tool_calls, as the model's chat format gives them), or with
        stream=True an iterator of `chat.completion.chunk` dicts (a role chunk, deltas,
        a finish chunk). Tools are rendered by the chat template and their calls
        constrained by the format's grammar (tool_choice auto, required, none or a named
        function); `response_format` (json_object / json_schema) constrains the answer;
        `functions` / `function_call` are read as tools. logprobs with top_logprobs
        candidates per token."""
        _unsupported(logits_processor=logits_processor, tfs_z=None if tfs_z == 1.0 else tfs_z)
        if functions and not tools:
            tools = [{"type": "function", "function": f} for f in functions]
            if isinstance(function_call, dict) and "name" in function_call:
                tool_choice = {"type": "function", "function": {"name": function_call["name"]}}
            elif function_call in ("auto", "none"):
                tool_choice = function_call
        if top_logprobs is not None and not logprobs:
            raise InvalidRequest("top_logprobs requires logprobs to be set to true")
        n_probs = (1 if top_logprobs is None else top_logprobs) if logprobs else None
        schema = _response_schema(response_format)
        chat = apply_chat(self.chat_template, ChatInputs(
            _messages(messages), tools=tools, tool_choice=tool_choice if tool_choice is not None else "auto",
            parallel_tool_calls=parallel_tool_calls, enable_thinking=enable_thinking,
            reasoning_format=reasoning_format, chat_template_kwargs=dict(chat_template_kwargs or {}),
            json_schema=(schema or {"type": "object"}) if tools and schema is not None else None,
            grammar=grammar if tools and grammar else None, stream=stream))
        ids = self.tokenize(chat.prompt, add_special=True, parse_special=True)
        params = self._sampling({"temperature": temperature, "top_p": top_p, "min_p": min_p, "typical_p": typical_p,
                                 "frequency_penalty": frequency_penalty, "presence_penalty": presence_penalty,
                                 "repeat_penalty": repeat_penalty, "top_k": top_k, "seed": seed,
                                 "mirostat": mirostat_mode, "mirostat_tau": mirostat_tau,
                                 "mirostat_eta": mirostat_eta, "logit_bias": logit_bias, "n_probs": n_probs},
                                sampling)
        constraint = grammar_fields(chat, self.tokenizer) if chat.grammar else None
        if constraint is None and schema is not None:
            if grammar:
                raise InvalidRequest("Cannot use both response_format and grammar")
            grammar = _schema_grammar(schema)
        task = self._task(ids, params, max_tokens=max_tokens, stop=stop, stream=stream, grammar=grammar,
                          constraint=constraint, more_stops=chat.additional_stops)
        task.chat_format, task.reasoning_format = chat.format, chat.syntax.reasoning_format
        req = _Request([task], stream, syntax=chat.syntax)
        answer = ChatCompletion(req, model=self._model_name(model), tokenizer=self.tokenizer, n_ctx=self.n_ctx)
        if not stream:
            return answer.whole(self._collect([task]))
        return self._stream(answer, [task])

    # -- embeddings --------------------------------------------------------------------
    def create_embedding(self, input: str | list, model: str | None = None, *, normalize: int = 2) -> dict:
        """OpenAI's embeddings answer for one input or a list (strings, or token ids):
        {"object": "list", "data": [{"object": "embedding", "embedding": [...], "index"}],
        "model", "usage"}; the model's pooling (with pooling "none", every token's row),
        unit length by default (`normalize` as Llama.embed takes it). Needs a model
        loaded with embedding=True."""
        if not self.embedding:
            raise InvalidRequest("create_embedding needs a model loaded with embedding=True")
        if self.pooling_type == "rank":
            raise InvalidRequest("a reranking model (pooling rank) gives scores, not embeddings: use rerank()")
        inputs = [input] if isinstance(input, str) or (input and isinstance(input[0], int)) else list(input)
        if not inputs:
            raise InvalidRequest("Input content cannot be empty")
        from .engine import EmbedParams, TaskRequest
        seqs = [self._embedding_input(x) for x in inputs]
        if any(not s for s in seqs):
            raise InvalidRequest("Input content cannot be empty")
        tasks = [TaskRequest(prompt=s, cache_prompt=False, n_predict=0,
                             embedding=EmbedParams(self.pooling_type, normalize)) for s in seqs]
        results = self._collect(tasks)
        data = []
        for i, r in enumerate(results):
            vec = r.vectors.tolist() if self.pooling_type == "none" else r.vectors[0].tolist()
            data.append({"object": "embedding", "embedding": vec, "index": i})
        n = sum(r.n_prompt for r in results)
        return {"object": "list", "data": data, "model": self._model_name(model),
                "usage": {"prompt_tokens": n, "total_tokens": n}}


_SAMPLING_FIELDS = {f for f in SamplingParams.__dataclass_fields__} | {"n_probs", "post_sampling_probs", "ignore_eos"}


def _unsupported(**given: Any) -> None:
    bad = [k for k, v in given.items() if v is not None]
    if bad:
        raise NotImplementedError(f"not supported by pyllama's Llama: {', '.join(bad)}")


def _dicts(payloads) -> Iterator[dict]:
    for p in payloads if isinstance(payloads, list) else [payloads]:
        if isinstance(p, dict):  # "[DONE]" is the SSE stream's end marker: an iterator just ends
            yield p


def _echoed(chunks: Iterator[dict], prefix: str) -> Iterator[dict]:
    first = True
    for c in chunks:
        if first and prefix and c.get("choices"):
            c["choices"][0]["text"] = prefix + c["choices"][0]["text"]
        first = False
        yield c


def _messages(messages: list[dict]) -> list[dict]:
    """The messages with their content as one string (text parts joined), checked as the server checks them."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list of message dicts")
    out = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InvalidRequest(f"invalid message: {m!r:.100}")
        content = m.get("content")
        if isinstance(content, list):
            parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if len(parts) != len(content) or not all(isinstance(t, str) for t in parts):
                raise InvalidRequest("only text content parts are supported")
            content = "".join(parts)
        elif content is None:
            content = ""
        elif not isinstance(content, str):
            raise InvalidRequest("message content must be a string or a list of content parts")
        out.append({**m, "content": content})
    return out


def _response_schema(rf: dict | None) -> dict | None:
    """The JSON schema `response_format` asks for ({} for any object), or None. Takes
    OpenAI's {"type": "json_schema", "json_schema": {"schema": ...}} and llama-cpp-python's
    {"type": "json_object", "schema": ...}."""
    if rf is None:
        return None
    if not isinstance(rf, dict):
        raise InvalidRequest("response_format must be a dict")
    kind = rf.get("type") or "text"
    if kind == "text":
        return None
    if kind == "json_object":
        return rf.get("schema") or {}
    if kind == "json_schema":
        wrapper = rf.get("json_schema") or {}
        return wrapper.get("schema", rf.get("schema", {})) or {}
    raise InvalidRequest(f'response_format type must be one of "text", "json_object" or "json_schema", got {kind!r}')


def _schema_grammar(schema: dict) -> str:
    return schema_to_grammar(schema or {"type": "object"})


__all__ = ["CompletionAPI"]
