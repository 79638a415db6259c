"""--sse-ping-interval: a stream that stays silent gets SSE comment pings (":" lines,
which SSE clients ignore), in process with an engine that answers late."""

from __future__ import annotations

import gevent

from pyllama.engine import FinalEvent, ProgressEvent, TaskRequest
from pyllama.engine.engine import empty_result
from pyllama.server.generation import PING, collect, run
from pyllama.server.sse import answer_events


class LateEngine:
    failure = None

    def __init__(self, delay: float, progress: bool = False):
        self.delay, self.progress = delay, progress

    def submit(self, *tasks):
        for t in tasks:
            if self.progress:
                gevent.spawn_later(0.01, t.deliver, ProgressEvent(5, 0, 0, 0, 0))
            gevent.spawn_later(self.delay, t.deliver, FinalEvent(empty_result(0)))

    def cancel(self, task):
        pass


def test_pings_while_silent():
    events = list(run(LateEngine(0.45), [TaskRequest(prompt=[1])], ping_s=0.1))
    assert sum(ev is PING for _, ev in events) >= 3 and isinstance(events[-1][1], FinalEvent)
    assert not any(ev is PING for _, ev in run(LateEngine(0.3), [TaskRequest(prompt=[1])]))  # none asked
    assert collect(LateEngine(0.2), [TaskRequest(prompt=[1])]) is not None


class Recorder:
    def opening(self, i):
        return []

    def progress(self, i, ev):
        return {"prompt_progress": ev.processed}

    def final(self, i, r):
        return {"final": True}

    def closing(self, last):
        return ["[DONE]"]


def test_a_ping_is_an_sse_comment_and_progress_goes_through_the_answer():
    out = list(answer_events(Recorder(), run(LateEngine(0.25, progress=True), [TaskRequest(prompt=[1])], ping_s=0.1)))
    assert out[0] == 'data: {"prompt_progress": 0}\n\n'
    assert ":\n\n" in out and out[-2] == 'data: {"final": true}\n\n' and out[-1] == "data: [DONE]\n\n"
