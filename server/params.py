"""A body's native generation parameters -> a TaskRequest, with llama-server's
rules: null means the default, a wrong type or a value past a hard limit is a 400
naming the field. (Which fields each API takes, and how OpenAI's map to these:
schemas.py.)"""

from __future__ import annotations

from typing import Any

from pyllama.engine import TaskRequest
from pyllama.errors import check_fits
from pyllama.sampling import SamplingError, SamplingParams, dry_breakers

from .constraints import Constraint, parse_constraint
from .errors import bad_request
from .lora import request_scales

INT32_MAX = 2**31 - 1
# Bounds on what one request may ask for (llama-server has none of these; without them one
# request could hold the engine thread or memory for everyone).
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


def n_choices(state, body: dict, names: tuple[str, ...]) -> int:
    """How many completions per prompt (`n_cmpl`, or OpenAI's `n`): 1 to --parallel."""
    n = None
    for name in names:
        n = field(body, name, int, None)
        if n is not None:
            break
    n = 1 if n is None else n
    if not 1 <= n <= state.config.n_slots:
        raise bad_request(f"Field '{name}': Value must be between 1 <= value <= {state.config.n_slots}, "
                          f"but got {n}")
    return n


def task_request(state, body: dict, prompt_ids: list[int], *, stream: bool,
                 constraint: Constraint | None = None, more_stops: list[str] = ()) -> TaskRequest:
    """One task; `constraint` (parse_constraint, once per HTTP request) defaults to the native API's;
    `more_stops` (a chat format's own) come after the request's stop strings."""
    check_fits(len(prompt_ids), state.engine.n_ctx_slot)  # a 400 before any streaming starts
    cfg = state.config
    n_predict = field(body, "n_predict", int, None)
    if n_predict is None:
        n_predict = field(body, "max_tokens", int, cfg.n_predict)
    if not -1 <= n_predict <= INT32_MAX:
        raise bad_request(f"Field 'n_predict': Value must be between -1 <= value <= {INT32_MAX}, but got {n_predict}")
    if n_predict == -1:  # the server's -n is only the default: a request's own limit wins
        n_predict = cfg.n_predict
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
    if not stops:  # as llama-server: the -r reverse prompts stop requests that name no stop string
        stops = list(cfg.reverse_prompts)
    stops += [s for s in more_stops if s and s not in stops]
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
                       cache_prompt=field(body, "cache_prompt", bool, cfg.cache_prompt),
                       id_slot=field(body, "id_slot", int, -1), special=cfg.special,
                       return_progress=field(body, "return_progress", bool, False),
                       timings_per_token=field(body, "timings_per_token", bool, False),
                       n_cache_reuse=n_cache_reuse,
                       n_keep=n_keep, n_discard=n_discard, n_indent=max(0, n_indent), t_max_predict_ms=t_max,
                       ignore_eos=sampling.ignore_eos, grammar=c.grammar, grammar_text=c.text,
                       grammar_lazy=c.lazy, trigger_tokens=c.trigger_tokens, trigger_patterns=c.trigger_patterns,
                       grammar_triggers=c.triggers, preserved_tokens=c.preserved, lora=request_scales(state, body))
