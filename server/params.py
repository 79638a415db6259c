"""Request bodies -> TaskRequests, with llama-server's rules: null means the
default, a wrong type or a value past a hard limit is a 400 naming the field."""

from __future__ import annotations

from typing import Any

from pyllama.engine import TaskRequest
from pyllama.errors import PromptTooLong, check_fits
from pyllama.sampling import SamplingError, SamplingParams, dry_breakers

from .constraints import Constraint, parse_constraint
from .errors import ApiError, bad_request

INT32_MAX = 2**31 - 1
# Bounds on what one request may ask for (llama-server has none of these; without them one
# request could hold the engine thread or memory for everyone).
MAX_PROMPTS = 256        # prompts in one request (times n_cmpl: tasks queued at once)
MAX_STOP = 64            # stop strings
MAX_STOP_CHARS = 256     # characters per stop string (each is checked after every token)


def field(body: dict, name: str, kind: type | tuple, default: Any) -> Any:
    v = body.get(name)
    if v is None:
        return default
    ok = isinstance(v, kind) and not (kind in (int, float, (int, float)) and isinstance(v, bool))
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        ok = True
    if not ok:
        names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
                 dict: "an object"}
        raise bad_request(f"Field '{name}': expected {names.get(kind, 'another type')}")
    return v


def tokenize_prompt(state, prompt: Any) -> list[int]:
    """One prompt: a string, a token list, or a list mixing both."""
    tok = state.llm.tokenizer
    n_vocab = state.llm.n_vocab
    if isinstance(prompt, dict):  # {"prompt_string": ..., "multimodal_data": [...]}
        if prompt.get("multimodal_data"):
            raise ApiError(501, "This server does not support multimodal input", "not_supported_error")
        if not isinstance(prompt.get("prompt_string"), str):
            raise bad_request("\"prompt_string\" must be a string")
        prompt = prompt["prompt_string"]
    if isinstance(prompt, str):
        _refuse_too_long(state, [prompt])
        ids = tok.tokenize(prompt, add_special=True, parse_special=True)
    elif isinstance(prompt, list):
        _refuse_too_long(state, [p for p in prompt if isinstance(p, str)],
                         n_more=sum(1 for p in prompt if isinstance(p, int)))
        ids = []
        for k, el in enumerate(prompt):
            if isinstance(el, bool):
                raise bad_request("\"prompt\" elements must be strings or integers")
            if isinstance(el, int):
                ids.append(el)
            elif isinstance(el, str):
                ids.extend(tok.tokenize(el, add_special=k == 0, parse_special=True))
            else:
                raise bad_request("\"prompt\" elements must be strings or integers")
    else:
        raise bad_request("\"prompt\" must be a string, a list of tokens, or a list of prompts")
    if any(t < 0 or t >= n_vocab for t in ids):
        raise bad_request("Prompt contains invalid tokens")
    return ids


def _refuse_too_long(state, texts: list[str], n_more: int = 0) -> None:
    """A 400 before tokenizing text that cannot fit: every token of a byte-level BPE or
    SPM vocabulary spells at most max_token_bytes bytes of the text (and neither drops
    any), so a text needs at least bytes / max_token_bytes tokens. Tokenizing a 20 MB
    prompt only to refuse it would cost seconds of CPU."""
    tok = state.llm.tokenizer
    if tok.kind not in ("bpe", "spm") or not texts:
        return
    longest = tok.__dict__.get("_max_token_bytes")
    if longest is None:
        longest = tok.__dict__["_max_token_bytes"] = max(len(t.encode("utf-8", "surrogatepass")) for t in tok.tokens)
    n_chars = sum(len(t) for t in texts)
    n_ctx = state.engine.n_ctx_slot
    if n_chars < n_ctx:  # a character is at least one byte: short texts need no closer look
        return
    at_least = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) // max(1, longest) + n_more
    if at_least >= n_ctx:
        raise PromptTooLong(at_least, n_ctx, f"at least {at_least}")


def split_prompts(prompt: Any) -> list[Any]:
    """A request's prompts: one, unless `prompt` is a list of strings and token lists
    (a list holding any bare token id is one mixed prompt)."""
    if isinstance(prompt, list):
        if not prompt:
            raise bad_request("\"prompt\" must not be empty")
        if any(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
            return [prompt]
        if len(prompt) > MAX_PROMPTS:
            raise bad_request(f"\"prompt\": at most {MAX_PROMPTS} prompts per request, got {len(prompt)}")
        return list(prompt)
    if isinstance(prompt, dict):
        return [prompt]
    return [prompt]


def n_choices(state, body: dict, names: tuple[str, ...]) -> int:
    """How many completions per prompt (`n_cmpl`, or OpenAI's `n`): 1 to --parallel."""
    n = None
    for name in names:
        n = field(body, name, int, None)
        if n is not None:
            break
    n = 1 if n is None else n
    if not 1 <= n <= state.config.parallel:
        raise bad_request(f"Field '{name}': Value must be between 1 <= value <= {state.config.parallel}, "
                          f"but got {n}")
    return n


def task_request(state, body: dict, prompt_ids: list[int], *, stream: bool,
                 constraint: Constraint | None = None) -> TaskRequest:
    """One task; `constraint` (parse_constraint, once per HTTP request) defaults to the native API's."""
    check_fits(len(prompt_ids), state.engine.n_ctx_slot)  # a 400 before any streaming starts
    cfg = state.config
    n_predict = field(body, "n_predict", int, None)
    if n_predict is None:
        n_predict = field(body, "max_tokens", int, cfg.n_predict)
    if not -1 <= n_predict <= INT32_MAX:
        raise bad_request(f"Field 'n_predict': Value must be between -1 <= value <= {INT32_MAX}, but got {n_predict}")
    if cfg.n_predict >= 0:
        n_predict = cfg.n_predict if n_predict < 0 else min(n_predict, cfg.n_predict)
    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop] if stop else []
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = [s for s in stop if s]
    else:
        raise bad_request("Field 'stop': expected a string or an array of strings")
    if len(stops) > MAX_STOP:
        raise bad_request(f"Field 'stop': at most {MAX_STOP} stop strings, got {len(stops)}")
    if any(len(x) > MAX_STOP_CHARS for x in stops):
        raise bad_request(f"Field 'stop': a stop string may have at most {MAX_STOP_CHARS} characters")
    try:
        sampling = SamplingParams.from_request(body, cfg.sampling, state.llm.tokenizer)
    except SamplingError as e:
        raise bad_request(str(e)) from None
    n_keep = field(body, "n_keep", int, cfg.keep)
    if n_keep < -1:
        raise bad_request(f"Field 'n_keep': Value must be between -1 <= value <= {INT32_MAX}, but got {n_keep}")
    n_discard = field(body, "n_discard", int, 0)
    if n_discard < 0:
        raise bad_request(f"Field 'n_discard': Value must be between 0 <= value <= {INT32_MAX}, but got {n_discard}")
    n_indent = field(body, "n_indent", int, 0)
    n_cache_reuse = field(body, "n_cache_reuse", int, cfg.cache_reuse)
    if n_cache_reuse < 0:
        raise bad_request(f"Field 'n_cache_reuse': Value must be between 0 <= value <= {INT32_MAX}, "
                          f"but got {n_cache_reuse}")
    t_max = field(body, "t_max_predict_ms", int, -1)
    c = constraint if constraint is not None else parse_constraint(state, body, openai=False)
    dry = None
    if sampling.dry_multiplier != 0.0 and "dry" in sampling.samplers:
        dry = dry_breakers(state.llm.tokenizer, sampling.dry_sequence_breakers)  # here, not on the engine thread
    return TaskRequest(dry_breakers=dry, prompt=prompt_ids, sampling=sampling, n_predict=n_predict, stop=stops, stream=stream,
                       cache_prompt=field(body, "cache_prompt", bool, True), id_slot=field(body, "id_slot", int, -1),
                       n_cache_reuse=n_cache_reuse,
                       n_keep=n_keep, n_discard=n_discard, n_indent=max(0, n_indent), t_max_predict_ms=t_max,
                       ignore_eos=sampling.ignore_eos, grammar=c.grammar, grammar_text=c.text,
                       grammar_lazy=c.lazy, trigger_tokens=c.trigger_tokens, trigger_patterns=c.trigger_patterns,
                       grammar_triggers=c.triggers, preserved_tokens=c.preserved)
