"""Soak test: one request never hurts another (issue 15).

For a configurable time, 2x as many client threads as the server has slots send a random
mix of normal requests (native /completion, /v1/completions, /v1/chat/completions, streamed
and not, some through the OpenAI SDK, /tokenize of a large text, json_schema-constrained
chat) and hostile ones (the CASES table below: empty prompts, absurd n_probs, ambiguous and
huge grammars, lone surrogates, NaN literals, 10,000 stop strings, a 20 MB prompt, ...).
A fraction of the streams is dropped mid-way and a fraction of the non-streamed requests
is abandoned by a short read timeout, as impatient clients do.

It measures, and the goals are:
- unexpected outcomes: 0. A 5xx, a timeout, a connection reset by the server, an error
  event or a truncated stream on any request, a non-200 on a normal request, a 200 whose
  body is wrong, or a hostile case answered later than its time limit. (A hostile case
  answered with another non-5xx status than the table expects is listed as a "status
  mismatch": reported, not a failure.) The exponential-mask grammar is "tolerated": any
  HTTP status is fine for that request alone; its statuses are listed separately.
- RSS growth of the server process after warm-up: < 5%, sampled every 5 s: the median of
  the last 20% of the run against the median of the 10%-20% window. Medians, because a
  hostile answer of 20 MB (n_probs over the whole vocabulary) is built and freed within
  seconds: a peak is not growth. The peak of the last 20% is reported beside it.
- every slot idle (/slots `is_processing` false) once the clients have stopped.
- the control invariant: a greedy request (`cache_prompt: true`, temperature 0,
  n_predict 32, `return_tokens: true`) gives the same tokens before the traffic, every
  ~10 s during it and after it: 0 violations.
- /health latency, sampled every ~0.5 s throughout: max and p99 < 1 s (reported).
The exit code is 0 only if the first four goals are met (2 if the server could not start).

Run (starts `pyllama-server -m smollm2-135m -np 2 -c 4096` on a free port by itself):

    python benchmarks/bench_soak.py --duration 1800
    python benchmarks/bench_soak.py --duration 120 --json > soak.json
    python benchmarks/bench_soak.py --url http://127.0.0.1:8080 --pid 12345 --duration 600
    python benchmarks/bench_soak.py --sweep --duration 60 -v   # each hostile case once, alone, first

With --url the server is not started or stopped; its RSS is read only if --pid is given.
Not part of CI: it takes minutes and its verdict depends on the machine.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

try:
    import psutil
except ImportError:  # RSS is then not measured (reported as such)
    psutil = None
try:
    import openai
except ImportError:  # the SDK cases are then left out of the mix
    openai = None


# --------------------------------------------------------------------------------------
# The catalogue. Body factories take a random.Random and return a dict/list (sent as
# JSON), bytes (sent as they are, with a JSON content type) or None (no body).

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle stays upright.",
    "List some facts about the Moon.",
    "Describe a busy market in the morning.",
    "What is the boiling point of water at high altitude?",
    "Give three tips for learning a new language.",
]
WORDS = ("time person year way day thing man world life hand part child eye woman place work week "
         "case point government company number group problem fact river mountain garden").split()


def once(factory: Callable[[], object]) -> Callable[[random.Random], object]:
    """A constant body built on first use only (the large ones take a while to build)."""
    box: list = []
    lock = threading.Lock()

    def get(_rng: random.Random) -> object:
        with lock:
            if not box:
                box.append(factory())
        return box[0]
    return get


def _n(rng: random.Random) -> int:
    return rng.randint(4, 48)


def _native(stream: bool) -> Callable[[random.Random], dict]:
    return lambda rng: {"prompt": rng.choice(PROMPTS), "n_predict": _n(rng), "temperature": 0.8,
                        "seed": rng.randrange(1 << 30), "cache_prompt": rng.random() < 0.5, "stream": stream}


def _v1_completion(stream: bool) -> Callable[[random.Random], dict]:
    return lambda rng: {"model": "x", "prompt": rng.choice(PROMPTS), "max_tokens": _n(rng),
                        "temperature": 0.8, "seed": rng.randrange(1 << 30), "stream": stream}


def _chat(stream: bool) -> Callable[[random.Random], dict]:
    return lambda rng: {"model": "x", "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
                        "max_tokens": _n(rng), "temperature": 0.8, "seed": rng.randrange(1 << 30),
                        "stream": stream}


def _large_text(rng: random.Random) -> dict:
    return {"content": " ".join(rng.choice(WORDS) + rng.choice(("", ",", ".", "s")) for _ in range(20000))}


def _schema_chat(rng: random.Random) -> dict:
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                                "age": {"type": "integer", "minimum": 0, "maximum": 150}},
              "required": ["name", "age"], "additionalProperties": False}
    return {"model": "x", "messages": [{"role": "user", "content": "Invent a person; answer in JSON."}],
            "max_tokens": 40, "temperature": 0.8, "seed": rng.randrange(1 << 30),
            "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}}


def _hostile_chat(**extra) -> dict:
    return {"model": "x", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, **extra}


def _ref_fanout_schema() -> dict:
    n = 30
    defs = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(n)}
    defs[f"d{n}"] = {"type": "string"}
    return _hostile_chat(response_format={"type": "json_schema", "json_schema": {
        "name": "fanout", "schema": {"$defs": defs, "$ref": "#/$defs/d0"}}})


def _rand_strings(rng: random.Random, n: int, k: int = 8) -> list[str]:
    letters = string.ascii_letters
    return ["".join(rng.choice(letters) for _ in range(k)) for _ in range(n)]


def _empty_content(body: dict) -> str | None:
    return None if body.get("content") == "" else f"content {body.get('content')!r}, expected ''"


def _has_content(body: dict) -> str | None:
    return None if isinstance(body.get("content"), str) else "no 'content' string"


def _has_choices(body: dict) -> str | None:
    return None if isinstance(body.get("choices"), list) and body["choices"] else "no 'choices'"


def _has_tokens(body: dict) -> str | None:
    return None if isinstance(body.get("tokens"), list) else "no 'tokens' list"


OK = frozenset({200})


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Callable[[random.Random], object]
    expect: frozenset            # HTTP statuses that are right for this request
    kind: str = "hostile"        # normal | hostile | tolerated (any HTTP status is fine)
    stream: bool = False         # SSE response: read event by event (may be dropped mid-way)
    sdk: bool = False            # sent through the OpenAI SDK (chat only)
    timeout: float = 180.0       # read timeout (between two chunks of a stream)
    max_seconds: float | None = None  # an answer slower than this is unexpected ("slow")
    weight: float = 1.0          # relative frequency within its group (normal / hostile)
    check: Callable[[dict], str | None] | None = None  # complaint about a 200 JSON body


NORMAL_CASES = [
    Case("completion", "POST", "/completion", _native(False), OK, "normal", check=_has_content),
    Case("completion_stream", "POST", "/completion", _native(True), OK, "normal", stream=True),
    Case("v1_completions", "POST", "/v1/completions", _v1_completion(False), OK, "normal", check=_has_choices),
    Case("v1_completions_stream", "POST", "/v1/completions", _v1_completion(True), OK, "normal", stream=True),
    Case("chat", "POST", "/v1/chat/completions", _chat(False), OK, "normal", check=_has_choices),
    Case("chat_stream", "POST", "/v1/chat/completions", _chat(True), OK, "normal", stream=True),
    Case("sdk_chat", "POST", "/v1/chat/completions", _chat(False), OK, "normal", sdk=True),
    Case("sdk_chat_stream", "POST", "/v1/chat/completions", _chat(True), OK, "normal", stream=True, sdk=True),
    Case("tokenize_large", "POST", "/tokenize", _large_text, OK, "normal", weight=0.5, check=_has_tokens),
    Case("chat_json_schema", "POST", "/v1/chat/completions", _schema_chat, OK, "normal", check=_has_choices),
]

ONE_MB_A = "a" * (1 << 20)
EQ8 = " | ".join(['"="'] * 8)

HOSTILE_CASES = [
    # llama-server: an empty prompt releases the slot and answers an empty completion
    Case("empty_prompt_list", "POST", "/completion", lambda r: {"prompt": [[]], "n_predict": 4},
         OK, check=_empty_content),
    Case("n_probs_1e30", "POST", "/completion",
         lambda r: {"prompt": "Hello", "n_predict": 4, "n_probs": 1e30}, frozenset({200, 400})),
    Case("top_logprobs_1e30", "POST", "/v1/chat/completions",
         lambda r: _hostile_chat(logprobs=True, top_logprobs=1e30), frozenset({200, 400})),
    Case("grammar_2p15_stacks", "POST", "/completion",  # each level's two alternatives differ by what follows
         lambda r: {"prompt": "x", "n_predict": 4,
                    "grammar": "\n".join(["root ::= a0"] + [f'a{i} ::= a{i + 1} "y" | a{i + 1} "z"' for i in range(15)]
                                         + ['a15 ::= "x"'])},
         frozenset({400}), max_seconds=10),
    Case("grammar_2p15_equal_alternatives", "POST", "/completion",  # equal stacks merge: cheap, and fine
         lambda r: {"prompt": "x", "n_predict": 4,
                    "grammar": "root ::= " + " ".join(["a"] * 15) + '\na ::= "x" | "x"\n'},
         frozenset({200}), max_seconds=30),
    Case("grammar_1mb_x2000", "POST", "/completion",
         once(lambda: json.dumps({"prompt": "x", "n_predict": 4,
                                  "grammar": f'root ::= "{ONE_MB_A}"{{2000}}'}).encode()),
         frozenset({400}), timeout=60, max_seconds=10, weight=0.3),
    Case("lone_surrogate", "POST", "/completion",
         lambda r: b'{"prompt": "a\\ud800b", "n_predict": 4}', frozenset({400})),
    Case("nan_literal", "POST", "/completion",
         lambda r: b'{"prompt":"x","n_predict":4,"temperature":NaN}', frozenset({400})),
    Case("infinity_literal", "POST", "/completion",
         lambda r: b'{"prompt":"x","n_predict":4,"top_p":-Infinity}', frozenset({400})),
    Case("invalid_json", "POST", "/completion", lambda r: b'{"prompt": "x", "n_predict": 4,', frozenset({400})),
    Case("stop_strings_10k", "POST", "/completion",
         lambda r: {"prompt": "x", "n_predict": 4, "stop": _rand_strings(r, 10000)}, frozenset({400})),
    Case("stop_string_1mb", "POST", "/completion",
         lambda r: {"prompt": "x", "n_predict": 4, "stop": [ONE_MB_A]}, frozenset({400}), weight=0.3),
    Case("dry_breakers_10k", "POST", "/completion",
         lambda r: {"prompt": "x", "n_predict": 4, "dry_multiplier": 0.8,
                    "dry_sequence_breakers": _rand_strings(r, 10000)}, frozenset({400})),
    Case("lazy_triggers_10k", "POST", "/completion",
         lambda r: {"prompt": "x", "n_predict": 4, "grammar": 'root ::= "x"', "grammar_lazy": True,
                    "grammar_triggers": [{"type": 2, "value": s} for s in _rand_strings(r, 10000)]},
         frozenset({400})),
    # the mask of this grammar takes exponential work: this request may fail, no other may
    Case("exp_mask_grammar", "POST", "/completion",
         lambda r: {"prompt": "=" * 64, "n_predict": 8,
                    "grammar": "root ::= " + " ".join(["e"] * 12) + ' "x"\ne ::= ' + EQ8 + "\n"},
         OK, "tolerated", timeout=120),
    # linear since $refs are memoised: converted and answered (200), else a 400 in milliseconds
    Case("schema_ref_fanout", "POST", "/v1/chat/completions", once(_ref_fanout_schema),
         frozenset({200, 400}), max_seconds=5),
    # until the slot's context is full; streamed so that the end of the run can drop it
    Case("n_predict_minus2", "POST", "/completion",
         lambda r: {"prompt": r.choice(PROMPTS), "n_predict": -2, "stream": True, "temperature": 1.0,
                    "seed": r.randrange(1 << 30)}, frozenset({200, 400}), stream=True, weight=0.3),
    Case("prompt_20mb", "POST", "/completion",
         once(lambda: json.dumps({"prompt": "a " * 10_000_000, "n_predict": 4}).encode()),
         frozenset({400, 413}), timeout=120, weight=0.2),
    Case("prompts_10k", "POST", "/completion",
         lambda r: {"prompt": ["hi"] * 10000, "n_predict": 1}, frozenset({400}), weight=0.5),
]


CONTROL_BODY = {"prompt": "The capital of France is", "temperature": 0, "n_predict": 32,
                "cache_prompt": True, "return_tokens": True, "seed": 0}

# --------------------------------------------------------------------------------------

EXAMPLES_PER_KEY = 3
DETAIL_CHARS = 400


def short(text: object) -> str:
    s = text if isinstance(text, str) else repr(text)
    s = " ".join(s.split())
    return s if len(s) <= DETAIL_CHARS else s[:DETAIL_CHARS] + "..."


class Stats:
    """Outcomes of every request, under one lock (client threads write, main reads)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.lock = threading.Lock()
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.seconds: dict[str, list[float]] = collections.defaultdict(list)
        self.buckets: dict[str, dict[str, collections.Counter]] = {
            b: collections.defaultdict(collections.Counter) for b in ("unexpected", "mismatch", "tolerated")}
        self.examples: dict[tuple[str, str, str], list[dict]] = collections.defaultdict(list)
        self.disconnects = 0
        self.total = 0
        self.intervals: list[tuple[float, float, str]] = []  # (start, end, case) of every request

    def record(self, case: Case, label: str, detail: str, dt: float) -> str:
        verdict = classify(case, label, dt)
        with self.lock:
            self.total += 1
            self.counts[case.name][label] += 1
            self.seconds[case.name].append(dt)
            end = time.monotonic() - self.t0
            self.intervals.append((end - dt, end, case.name))
            if label == "disconnect":
                self.disconnects += 1
            if verdict in self.buckets:
                self.buckets[verdict][case.name][label] += 1
                ex = self.examples[(verdict, case.name, label)]
                if len(ex) < EXAMPLES_PER_KEY:
                    ex.append({"t": round(time.monotonic() - self.t0, 1), "seconds": round(dt, 2),
                               "detail": short(detail)})
        return verdict

    def n(self, bucket: str) -> int:
        with self.lock:
            return sum(sum(c.values()) for c in self.buckets[bucket].values())


def classify(case: Case, label: str, dt: float) -> str:
    """ok | unexpected | mismatch (a hostile case, another non-5xx status) | tolerated"""
    if label == "disconnect":
        return "ok"
    if not label.isdigit():  # timeout, conn-error, sse-error, truncated, bad-body
        return "unexpected"
    code = int(label)
    if case.kind == "tolerated":
        return "ok" if code in case.expect else "tolerated"
    if code in case.expect:
        return "unexpected" if case.max_seconds is not None and dt > case.max_seconds else "ok"
    if code >= 500 or case.kind == "normal":
        return "unexpected"
    return "mismatch"


# --------------------------------------------------------------------------------------
# One request.

def encode(body: object) -> bytes | None:
    if body is None or isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def run_http(url: str, case: Case, rng: random.Random, drop: bool, stop: threading.Event) -> tuple[str, str]:
    """(label, detail): label is the HTTP status, "disconnect" (ours, on purpose), or what went wrong."""
    data = encode(case.body(rng))
    headers = {"Content-Type": "application/json"} if data is not None else {}
    timeout = (5, case.timeout)
    if drop and not case.stream:
        timeout = (5, rng.uniform(0.05, 1.0))
    t0 = time.monotonic()
    try:
        with requests.request(case.method, url + case.path, data=data, headers=headers, timeout=timeout,
                              stream=case.stream) as r:
            if r.status_code != 200 or not case.stream:
                text = r.text
                if r.status_code == 200 and case.check is not None:
                    try:
                        complaint = case.check(json.loads(text))
                    except ValueError as e:
                        complaint = f"not JSON ({e})"
                    if complaint:
                        return "bad-body", f"{complaint}: {text}"
                return str(r.status_code), text
            return read_stream(r, rng.randint(1, 12) if drop else None, stop, t0, case.timeout)
    except requests.exceptions.ReadTimeout as e:
        if drop and not case.stream:
            return "disconnect", ""
        return "timeout", str(e)
    except requests.exceptions.ConnectTimeout as e:
        return "timeout", f"connect: {e}"
    except requests.exceptions.ChunkedEncodingError as e:
        return "conn-reset", str(e)
    except requests.exceptions.ConnectionError as e:
        if "timed out" in str(e):  # a read timeout inside a stream surfaces as a ConnectionError
            return ("disconnect", "") if drop and not case.stream else ("timeout", str(e))
        return "conn-error", str(e)
    except requests.exceptions.RequestException as e:
        return "conn-error", f"{type(e).__name__}: {e}"


def read_stream(r: requests.Response, drop_after: int | None, stop: threading.Event,
                t0: float, limit: float) -> tuple[str, str]:
    """Read SSE events until [DONE] / `stop: true`; drop the stream after `drop_after`
    events, or when the run ends (both are our disconnects, not the server's fault)."""
    events = 0
    finished = False
    for line in r.iter_lines():
        if not line:
            continue
        if line.startswith(b"error:"):
            return "sse-error", line.decode("utf-8", "replace")
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            finished = True
            break
        try:
            ev = json.loads(payload)
        except ValueError:
            return "bad-body", f"event is not JSON: {payload[:200]!r}"
        if isinstance(ev, dict) and "error" in ev:
            return "sse-error", json.dumps(ev)
        if isinstance(ev, dict) and ev.get("stop") is True:
            finished = True  # native stream: the final event (a [DONE] may follow or not)
        events += 1
        if (drop_after is not None and events >= drop_after and not finished) or stop.is_set():
            r.close()
            return "disconnect", ""
        if time.monotonic() - t0 > 4 * limit:
            r.close()
            return "timeout", f"stream still running after {4 * limit:.0f} s"
    if not finished:
        return "truncated", f"the stream ended after {events} events without a final event"
    return "200", ""


def run_sdk(client, case: Case, rng: random.Random, drop: bool, stop: threading.Event) -> tuple[str, str]:
    body = case.body(rng)
    kwargs = {k: v for k, v in body.items() if k != "stream"}
    try:
        if not case.stream:
            c = client.with_options(timeout=rng.uniform(0.05, 1.0)) if drop else client
            out = c.chat.completions.create(**kwargs)
            if not out.choices:
                return "bad-body", out.model_dump_json()
            return "200", ""
        drop_after = rng.randint(1, 12) if drop else None
        events = 0
        stream = client.chat.completions.create(stream=True, **kwargs)
        try:
            for _chunk in stream:
                events += 1
                if (drop_after is not None and events >= drop_after) or stop.is_set():
                    return "disconnect", ""
        finally:
            stream.close()
        return "200", ""
    except openai.APIStatusError as e:
        return str(e.status_code), short(getattr(e, "body", None) or e.message)
    except openai.APITimeoutError as e:
        return ("disconnect", "") if drop and not case.stream else ("timeout", str(e))
    except openai.APIConnectionError as e:
        return "conn-error", f"{e}: {e.__cause__!r}"
    except openai.APIError as e:  # an error event inside a stream
        return "sse-error", f"{e.message}: {getattr(e, 'body', None)}"


# --------------------------------------------------------------------------------------
# The threads.

class Run:
    def __init__(self, args: argparse.Namespace, url: str, proc: subprocess.Popen | None, pid: int | None):
        self.args = args
        self.url = url
        self.proc = proc
        self.pid = pid
        self.t0 = time.monotonic()
        self.stats = Stats(self.t0)
        self.stop = threading.Event()      # clients and control: stop starting requests
        self.stop_monitors = threading.Event()
        self.dead_reason: str | None = None
        self.dead_at: float | None = None
        self.health: list[tuple[float, float, str]] = []  # (t, seconds, status)
        self.rss: list[tuple[float, int]] = []            # (t, bytes)
        self.control: list[dict] = []
        self.reference: dict | None = None
        normal = [c for c in NORMAL_CASES if (openai is not None or not c.sdk) and c.name not in args.skip]
        hostile = [c for c in HOSTILE_CASES if c.name not in args.skip]
        self.normal = (normal, [c.weight for c in normal])
        self.hostile = (hostile, [c.weight for c in hostile])

    def now(self) -> float:
        return time.monotonic() - self.t0

    def mark_dead(self, reason: str) -> None:
        if self.dead_reason is None:
            self.dead_reason, self.dead_at = reason, self.now()
            print(f"[{self.now():7.1f}s] server is gone: {reason}", file=sys.stderr, flush=True)
            self.stop.set()

    # ---- clients
    def client(self, idx: int) -> None:
        rng = random.Random(self.args.seed * 1000 + idx)
        sdk = None
        if openai is not None:
            sdk = openai.OpenAI(base_url=self.url + "/v1", api_key="soak", max_retries=0, timeout=180.0)
        while not self.stop.is_set():
            cases, weights = self.hostile if rng.random() < self.args.hostile_fraction else self.normal
            if not cases:  # every hostile case skipped
                cases, weights = self.normal
            case = rng.choices(cases, weights)[0]
            drop = case.kind == "normal" and rng.random() < self.args.disconnect_fraction
            t = time.monotonic()
            try:
                if case.sdk:
                    label, detail = run_sdk(sdk, case, rng, drop, self.stop)
                else:
                    label, detail = run_http(self.url, case, rng, drop, self.stop)
            except Exception as e:  # a bug of ours must not end the client silently
                label, detail = "harness-error", f"{type(e).__name__}: {e}"
            if self.dead_reason is not None and label in ("conn-error", "conn-reset", "timeout"):
                label += "-after-death" if self.dead_at is not None and t - self.t0 > self.dead_at else ""
            verdict = self.stats.record(case, label, detail, time.monotonic() - t)
            if verdict == "unexpected" and self.args.verbose:
                print(f"[{self.now():7.1f}s] unexpected {case.name} -> {label}: {short(detail)[:200]}",
                      file=sys.stderr, flush=True)

    # ---- sweep: every hostile case once, alone, each followed by the control request
    def sweep(self) -> None:
        rng = random.Random(self.args.seed)
        cases = sorted(self.hostile[0], key=lambda c: c.kind == "tolerated")  # a stall last
        for case in cases:
            if self.dead_reason is not None:
                break
            t = time.monotonic()
            label, detail = run_http(self.url, case, rng, False, self.stop)
            dt = time.monotonic() - t
            verdict = self.stats.record(case, label, detail, dt)
            rec = self.control_once(f"sweep:{case.name}")
            print(f"[{self.now():7.1f}s] sweep {case.name:22s} -> {label} ({verdict}, {dt:.1f} s); "
                  f"control {'same' if rec.get('same') else rec.get('status')}"
                  + ("" if verdict == "ok" else f": {short(detail)[:160]}"), file=sys.stderr, flush=True)

    # ---- control invariant
    def control_once(self, phase: str) -> dict:
        t = self.now()
        rec = {"phase": phase, "t": round(t, 1)}
        try:
            r = requests.post(self.url + "/completion", json=CONTROL_BODY, timeout=(5, 60))
            rec["status"] = r.status_code
            if r.status_code == 200:
                body = r.json()
                rec["tokens"], rec["content"] = body.get("tokens"), body.get("content")
            else:
                rec["error"] = short(r.text)
        except (requests.exceptions.RequestException, ValueError) as e:
            rec["status"], rec["error"] = "error", short(f"{type(e).__name__}: {e}")
        if self.reference is None and rec.get("tokens"):
            self.reference = rec
        elif self.reference is not None:
            rec["same"] = rec.get("tokens") == self.reference["tokens"]
        self.control.append(rec)
        return rec

    def control_loop(self) -> None:
        while not self.stop.wait(self.args.control_interval):
            rec = self.control_once("during")
            if rec.get("same") is False and self.args.verbose:
                print(f"[{self.now():7.1f}s] control differs: {rec.get('content')!r} ({rec.get('error')})",
                      file=sys.stderr, flush=True)

    # ---- monitors
    def health_loop(self) -> None:
        refused = not_ok = timeouts = 0  # in a row
        while not self.stop_monitors.is_set():
            t = time.monotonic()
            try:
                r = requests.get(self.url + "/health", timeout=(2, 10))
                status = str(r.status_code)
                refused = timeouts = 0
                not_ok = 0 if r.status_code == 200 else not_ok + 1
            except requests.exceptions.Timeout:
                status = "timeout"
                timeouts += 1
            except requests.exceptions.RequestException:
                status = "conn-error"
                refused += 1
            dt = time.monotonic() - t
            self.health.append((t - self.t0, dt, status))
            if self.proc is not None and self.proc.poll() is not None:
                self.mark_dead(f"the process exited with code {self.proc.returncode}")
            elif refused >= 6:
                self.mark_dead("/health refused 6 connections in a row")
            elif not_ok >= 10:
                self.mark_dead(f"/health answered {status} 10 times in a row (engine dead?)")
            elif timeouts == 6:  # hung, not dead: every request has a timeout, so the run goes on
                print(f"[{self.now():7.1f}s] /health timed out 6 times in a row: the server is hung",
                      file=sys.stderr, flush=True)
            self.stop_monitors.wait(max(0.0, 0.5 - dt))

    def read_rss(self) -> int | None:
        if psutil is None or self.pid is None:
            return None
        try:
            p = psutil.Process(self.pid)
            total = p.memory_info().rss
            for c in p.children(recursive=True):
                try:
                    total += c.memory_info().rss
                except psutil.Error:
                    pass
            return total
        except psutil.Error:
            return None

    def rss_loop(self) -> None:
        while not self.stop_monitors.is_set():
            v = self.read_rss()
            if v is not None:
                self.rss.append((self.now(), v))
            self.stop_monitors.wait(5.0)

    def progress_line(self) -> str:
        hs = [d for _, d, _ in self.health]
        rss = f"{self.rss[-1][1] / 2**20:.0f} MB" if self.rss else "n/a"
        return (f"[{self.now():7.1f}s] requests {self.stats.total}, unexpected {self.stats.n('unexpected')}, "
                f"mismatch {self.stats.n('mismatch')}, /health max {max(hs, default=0):.2f} s, RSS {rss}, "
                f"control runs {len(self.control)}")


# --------------------------------------------------------------------------------------
# Server process.

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="pyllama-soak-")  # outside the checkout
    log_path = os.path.join(workdir, "server.log")
    cmd = [sys.executable, "-m", "pyllama.server.cli", "-m", args.model, "-np", str(args.slots),
           "-c", str(args.ctx or 2048 * args.slots), "--host", "127.0.0.1", "--port", str(port),
           *args.server_arg]
    print("starting: " + " ".join(cmd), file=sys.stderr, flush=True)
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return proc, f"http://127.0.0.1:{port}", log_path


def wait_ready(url: str, proc: subprocess.Popen | None, limit: float) -> str | None:
    """None when /health answers 200, else why not."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return f"the server exited with code {proc.returncode} while loading"
        try:
            if requests.get(url + "/health", timeout=(2, 5)).status_code == 200:
                return None
        except requests.exceptions.RequestException:
            pass
        time.sleep(0.5)
    return f"/health did not answer 200 within {limit:.0f} s"


def stop_server(proc: subprocess.Popen) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def tail(path: str | None, n: int = 30) -> list[str]:
    """The last lines of the server log, without the access lines of our /health polling."""
    if not path or not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 400_000))
        lines = f.read().decode("utf-8", "replace").splitlines()
    return [short(x) for x in lines if '"GET /health' not in x][-n:]


# --------------------------------------------------------------------------------------
# The end of the run and the report.

def final_checks(run: Run, drain_deadline: float) -> dict:
    """Slots idle (polled until the drain deadline), /health, control once more."""
    out: dict = {"slots": None, "slots_idle": False, "health": None}
    if run.dead_reason is not None:
        out["slots_error"] = "server is gone"
        return out
    while True:
        try:
            r = requests.get(run.url + "/slots", timeout=(5, 10))
            if r.status_code != 200:
                out["slots_error"] = f"{r.status_code}: {short(r.text)}"
                break
            slots = r.json()
            out["slots"] = [{"id": s.get("id"), "is_processing": s.get("is_processing"),
                             "id_task": s.get("id_task")} for s in slots]
            out["slots_idle"] = bool(slots) and not any(s.get("is_processing") for s in slots)
            out.pop("slots_error", None)
        except (requests.exceptions.RequestException, ValueError) as e:
            out["slots_error"] = short(f"{type(e).__name__}: {e}")
        if out["slots_idle"] or time.monotonic() >= drain_deadline:
            break
        time.sleep(1.0)
    try:
        t = time.monotonic()
        r = requests.get(run.url + "/health", timeout=(5, 10))
        out["health"] = {"status": r.status_code, "seconds": round(time.monotonic() - t, 3), "body": short(r.text)}
    except requests.exceptions.RequestException as e:
        out["health"] = {"status": "error", "body": short(str(e))}
    run.control_once("after")
    return out


def worst_health(run: Run, n: int = 5) -> list[dict]:
    """The slowest /health samples over 1 s, with the requests running at the time."""
    out = []
    for t, d, status in sorted(run.health, key=lambda h: -h[1])[:n]:
        if d < 1.0:
            break
        busy = collections.Counter(c for a, b, c in run.stats.intervals if a <= t + d and b >= t)
        out.append({"t": round(t, 1), "seconds": round(d, 2), "status": status, "requests_running": dict(busy)})
    return out


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def rss_report(samples: list[tuple[float, int]], duration: float, final: int | None) -> dict:
    if not samples:
        return {"measured": False, "why": "no psutil" if psutil is None else "no server pid"}
    warm = [v for t, v in samples if 0.1 * duration <= t <= 0.2 * duration]
    late = [v for t, v in samples if 0.8 * duration <= t <= duration + 1]
    base = statistics.median(warm) if warm else samples[0][1]
    late_median = statistics.median(late) if late else None
    late_max = max(late) if late else None
    growth = None if late_median is None else 100.0 * (late_median - base) / base
    mb = lambda v: None if v is None else round(v / 2**20, 1)  # noqa: E731
    return {"measured": True, "samples": len(samples), "first_mb": mb(samples[0][1]), "warm_mb": mb(base),
            "late_median_mb": mb(late_median), "late_max_mb": mb(late_max), "final_mb": mb(final), "max_mb": mb(max(v for _, v in samples)),
            "growth_pct": None if growth is None else round(growth, 2)}


def build_report(run: Run, fin: dict, rss_final: int | None, exit_code: int | None, log_path: str | None,
                 duration: float, in_flight: int) -> dict:
    st = run.stats
    hs = [d for _, d, _ in run.health]
    health_bad = collections.Counter(s for _, _, s in run.health if s != "200")
    during = [c for c in run.control if c["phase"] != "before"]
    violations = [c for c in during if c.get("same") is not True]
    rss = rss_report(run.rss, duration, rss_final)
    unexpected = st.n("unexpected")
    goals = {
        "no_unexpected": unexpected == 0 and run.dead_reason is None,
        "rss_growth_under_5pct": rss.get("growth_pct") is not None and rss["growth_pct"] < 5.0,
        "slots_idle": bool(fin.get("slots_idle")),
        "control_invariant": run.reference is not None and not violations and len(during) > 0,
        "health_under_1s (reported)": bool(hs) and max(hs) < 1.0 and (pct(hs, 0.99) or 0) < 1.0,
    }
    if not rss.get("measured"):
        goals["rss_growth_under_5pct"] = None  # not measurable: not counted against the run
    gating = [v for k, v in goals.items() if "reported" not in k and v is not None]

    def examples(bucket: str) -> list[dict]:
        return [{"case": c, "label": l, **e} for (b, c, l), ex in sorted(st.examples.items()) if b == bucket
                for e in ex]
    return {
        "config": {k: v for k, v in vars(run.args).items()},
        "url": run.url,
        "duration_s": round(duration, 1),
        "server": {"died": run.dead_reason is not None, "why": run.dead_reason, "died_at_s": run.dead_at,
                   "exit_code": exit_code, "log": log_path,
                   "log_tail": tail(log_path) if run.dead_reason or unexpected else []},
        "requests": {"total": st.total, "deliberate_disconnects": st.disconnects,
                     "clients_in_flight_after_drain": in_flight,
                     "by_case": {c: dict(cnt) for c, cnt in sorted(st.counts.items())},
                     "p50_s_by_case": {c: round(pct(v, 0.5), 3) for c, v in sorted(st.seconds.items())}},
        "unexpected": {"count": unexpected, "by_case": {c: dict(v) for c, v in st.buckets["unexpected"].items()},
                       "examples": examples("unexpected")},
        "status_mismatch": {"count": st.n("mismatch"),
                            "by_case": {c: dict(v) for c, v in st.buckets["mismatch"].items()},
                            "examples": examples("mismatch")},
        "tolerated": {"by_case": {c: dict(v) for c, v in st.buckets["tolerated"].items()},
                      "examples": examples("tolerated")},
        "health": {"worst": worst_health(run), "samples": len(hs), "max_s": round(max(hs), 3) if hs else None,
                   "p99_s": round(pct(hs, 0.99), 3) if hs else None, "p50_s": round(pct(hs, 0.5), 3) if hs else None,
                   "not_200": dict(health_bad), "final": fin.get("health")},
        "rss": rss,
        "slots": {"idle": fin.get("slots_idle"), "slots": fin.get("slots"), "error": fin.get("slots_error")},
        "control": {"reference": run.reference and {k: run.reference.get(k) for k in ("tokens", "content")},
                    "runs": len(run.control), "violations": violations},
        "goals": goals,
        "ok": all(gating),
    }


def print_summary(rep: dict) -> None:
    p = print
    mark = lambda ok: "PASS" if ok else ("n/a " if ok is None else "FAIL")  # noqa: E731
    p(f"\n=== soak: {rep['duration_s']} s against {rep['url']} "
      f"({rep['config']['clients']} clients, {rep['config']['slots']} slots, seed {rep['config']['seed']}) ===")
    srv = rep["server"]
    if srv["died"]:
        p(f"SERVER DIED at {srv['died_at_s']:.1f} s: {srv['why']}")
    p(f"requests: {rep['requests']['total']} ({rep['requests']['deliberate_disconnects']} deliberately dropped; "
      f"{rep['requests']['clients_in_flight_after_drain']} clients still in flight after the drain)")
    p("\nper case (label: count), p50 seconds:")
    for case, cnt in rep["requests"]["by_case"].items():
        labels = ", ".join(f"{k}: {v}" for k, v in sorted(cnt.items()))
        p(f"  {case:24s} {labels}   (p50 {rep['requests']['p50_s_by_case'][case]} s)")
    for key, title in (("unexpected", "UNEXPECTED"), ("status_mismatch", "status mismatches (not 5xx; reported)"),
                       ("tolerated", "tolerated (exponential-mask grammar; any status is fine for it)")):
        sec = rep[key]
        if not sec["by_case"]:
            continue
        p(f"\n{title}{': ' + str(sec['count']) if 'count' in sec else ''}")
        for case, cnt in sec["by_case"].items():
            p(f"  {case:24s} " + ", ".join(f"{k}: {v}" for k, v in sorted(cnt.items())))
        for e in sec["examples"][:40]:
            p(f"    - {e['case']} -> {e['label']} at {e['t']} s ({e['seconds']} s): {e['detail']}")
    h = rep["health"]
    p(f"\n/health: {h['samples']} samples, max {h['max_s']} s, p99 {h['p99_s']} s, p50 {h['p50_s']} s, "
      f"not 200: {h['not_200'] or 'none'}; final {h['final']}")
    for w in h["worst"]:
        p(f"  slow /health at {w['t']} s: {w['seconds']} s ({w['status']}); running: {w['requests_running']}")
    r = rep["rss"]
    if r.get("measured"):
        p(f"RSS: first {r['first_mb']} MB, after warm-up {r['warm_mb']} MB, last 20% median {r['late_median_mb']} MB "
          f"(peak {r['late_max_mb']} MB), "
          f"final {r['final_mb']} MB, growth {r['growth_pct']}%")
    else:
        p(f"RSS: not measured ({r['why']})")
    s = rep["slots"]
    p(f"slots at the end: {s['slots']}" + (f" (error: {s['error']})" if s["error"] else ""))
    c = rep["control"]
    ref = c["reference"]
    p(f"control: {c['runs']} runs, reference {ref['content']!r}" if ref else "control: NO REFERENCE")
    for v in c["violations"][:10]:
        p(f"  - violation ({v['phase']}, t={v['t']} s, status {v.get('status')}): "
          f"{v.get('content')!r} {v.get('error', '')}")
    if srv["log_tail"]:
        p(f"\nserver log tail ({srv['log']}):")
        for line in srv["log_tail"]:
            p("  | " + line)
    p("\ngoals:")
    for k, v in rep["goals"].items():
        p(f"  {mark(v)} {k}")
    p(f"\nRESULT: {'PASS' if rep['ok'] else 'FAIL'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (default: start one)")
    ap.add_argument("--pid", type=int, help="with --url: the server's process id, for RSS")
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of traffic (default 120)")
    ap.add_argument("--slots", type=int, default=2, help="-np of the server (default 2)")
    ap.add_argument("--clients", type=int, help="client threads (default 2x slots)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--ctx", type=int, help="-c of the server (default 2048 x slots)")
    ap.add_argument("--server-arg", action="append", default=[], help="extra argument for the server (repeat)")
    ap.add_argument("--hostile-fraction", type=float, default=0.3)
    ap.add_argument("--disconnect-fraction", type=float, default=0.2)
    ap.add_argument("--control-interval", type=float, default=10.0)
    ap.add_argument("--load-timeout", type=float, default=600.0)
    ap.add_argument("--skip", action="append", default=[], metavar="CASE",
                    help="leave a case of the catalogue out (repeat), e.g. one that stalls the server today")
    ap.add_argument("--sweep", action="store_true",
                    help="before the traffic, send every hostile case once, alone, each followed by the control")
    ap.add_argument("--json", action="store_true", help="print the final report as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="print unexpected outcomes as they happen")
    args = ap.parse_args()
    args.clients = args.clients or 2 * args.slots
    unknown = set(args.skip) - {c.name for c in NORMAL_CASES + HOSTILE_CASES}
    if unknown:
        ap.error(f"unknown case(s) {sorted(unknown)}; the catalogue: "
                 + ", ".join(c.name for c in NORMAL_CASES + HOSTILE_CASES))
    if len(set(args.skip) & {c.name for c in NORMAL_CASES}) == len(NORMAL_CASES):
        ap.error("at least one normal case must remain")
    if not 0.0 <= args.hostile_fraction <= 1.0 or not 0.0 <= args.disconnect_fraction <= 1.0:
        ap.error("fractions are between 0 and 1")

    proc, log_path, pid = None, None, args.pid
    if args.url:
        url = args.url.rstrip("/")
    else:
        proc, url, log_path = start_server(args)
        pid = proc.pid
    try:
        why = wait_ready(url, proc, args.load_timeout)
        if why is not None:
            print(f"the server is not ready: {why}", file=sys.stderr)
            for line in tail(log_path):
                print("  | " + line, file=sys.stderr)
            return 2
        return soak(args, url, proc, pid, log_path)
    finally:
        if proc is not None and proc.poll() is None:
            stop_server(proc)


def soak(args: argparse.Namespace, url: str, proc: subprocess.Popen | None, pid: int | None,
         log_path: str | None) -> int:
    run = Run(args, url, proc, pid)
    ref = run.control_once("before")
    if run.reference is None:
        print(f"the control request failed before any traffic: {ref}", file=sys.stderr)
        return 2
    run.t0 = run.stats.t0 = time.monotonic()  # the run's clock starts with the traffic
    monitors = [threading.Thread(target=run.health_loop, daemon=True),
                threading.Thread(target=run.rss_loop, daemon=True)]
    workers = [threading.Thread(target=run.client, args=(i,), daemon=True, name=f"client-{i}")
               for i in range(args.clients)]
    control = threading.Thread(target=run.control_loop, daemon=True)
    for t in monitors:
        t.start()
    if args.sweep:
        run.sweep()
    for t in (control, *workers):
        t.start()
    end = time.monotonic() + args.duration
    next_progress = time.monotonic() + 30
    while time.monotonic() < end and not run.stop.is_set():
        time.sleep(0.25)
        if time.monotonic() >= next_progress:
            print(run.progress_line(), file=sys.stderr, flush=True)
            next_progress += 30
    duration = run.now()
    run.stop.set()
    print(f"[{run.now():7.1f}s] traffic stopped; draining (up to 30 s)", file=sys.stderr, flush=True)
    drain_deadline = time.monotonic() + 30
    for t in (*workers, control):
        t.join(max(0.0, drain_deadline - time.monotonic()))
    in_flight = sum(t.is_alive() for t in workers)
    fin = final_checks(run, max(drain_deadline, time.monotonic() + 5))
    rss_final = run.read_rss()
    run.stop_monitors.set()
    for t in monitors:
        t.join(15)
    exit_code = None
    if proc is not None:
        died = proc.poll() is not None
        exit_code = stop_server(proc)
        if died and run.dead_reason is None:
            run.mark_dead(f"the process exited with code {exit_code}")
    rep = build_report(run, fin, rss_final, exit_code, log_path, duration, in_flight)
    if args.json:
        print(json.dumps(rep, indent=1, default=str))
    else:
        print_summary(rep)
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
