"""Server-sent events: `data: <json>\n\n` per event (`event: <name>` before it for a
NamedEvent, as the Anthropic and Responses streams name theirs), and the one loop that turns a
generation's engine events into the events of any API's stream."""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

from flask import Response

from pyllama.engine import ErrorEvent, FinalEvent, PartialEvent, ProgressEvent

from .errors import error_event_body
from .generation import PING
from .json_text import dumps
from .offload import offload


class NamedEvent(NamedTuple):
    """A payload sent under an SSE event name: `event: <name>` before its data line
    (every event of a Responses or Anthropic Messages stream is named by its type)."""

    name: str
    payload: dict | str


def event(payload: dict | str | NamedEvent) -> str:
    if isinstance(payload, NamedEvent):
        return f"event: {payload.name}\n" + event(payload.payload)
    data = payload if isinstance(payload, str) else dumps(payload)  # piece by piece: it may be megabytes
    return f"data: {data}\n\n"


def stream_response(events: Iterable[str]) -> Response:
    return Response(events, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


def _events(payloads: dict | list) -> Iterator[str]:
    for payload in payloads if isinstance(payloads, list) else [payloads]:
        yield event(payload)


def _with_timings(answer, ev, payloads: dict | list) -> dict | list:
    """A request's timings_per_token: the timings so far on the last chunk of a partial
    or progress event (llama-server's native, OpenAI and Responses streams; not
    Anthropic's)."""
    if ev.timings is None or not getattr(answer, "CHUNK_TIMINGS", False):
        return payloads
    chunks = payloads if isinstance(payloads, list) else [payloads]
    last = chunks[-1] if chunks else None
    if isinstance(last, NamedEvent):
        last = last.payload
    if isinstance(last, dict):
        last["timings"] = ev.timings.to_json()
    return payloads


def answer_events(answer, events: Iterable[tuple[int, object]]) -> Iterator[str]:
    """The stream of a generation: (task index, engine event) pairs as generation.run
    yields them, told by `answer` (a responses.Answer). Per task: its opening before its
    first event, the chunks of each partial and final event (a chat's partial may have
    none: text held back until the next token decides); after every task ended, the
    closing. An ErrorEvent ends the stream with the error's body (or with what the
    answer's optional `error_payload(error)` makes of it), nothing after it.
    A partial with probabilities is built on a worker thread (its candidate lists can
    be megabytes)."""
    error_payload = getattr(answer, "error_payload", error_event_body)
    started: set[int] = set()
    last = None
    for i, ev in events:
        if ev is PING:  # an SSE comment while the stream is silent (--sse-ping-interval)
            yield ":\n\n"
            continue
        if isinstance(ev, ErrorEvent):
            yield event(error_payload(ev.error))
            return
        if i not in started:
            started.add(i)
            for payload in answer.opening(i):
                yield event(payload)
        if isinstance(ev, ProgressEvent):
            yield from _events(_with_timings(answer, ev, answer.progress(i, ev)))
        elif isinstance(ev, PartialEvent):
            out = offload(answer.partial, i, ev) if ev.probs else answer.partial(i, ev)
            yield from _events(_with_timings(answer, ev, out))
        elif isinstance(ev, FinalEvent):
            last = ev.result
            yield from _events(answer.final(i, ev.result))
    for payload in answer.closing(last):
        yield event(payload)
