"""--sleep-idle-seconds N: after N seconds with no request and nothing running, the
engine stops and the model, its KV cache and adapters are freed; the next request
that needs the model loads it again and waits meanwhile (as llama-server's sleep).

What counts, as llama-server has it: GET /health, /props, /models and /metrics
(and the web UI's files, CORS preflights) neither wake the model nor reset the
timer; every other request does both. /health keeps answering 200 while asleep
and while waking (a sleeping server is healthy), /props says `is_sleeping`.

Everything here runs on the event loop (greenlets): the switch between awake and
asleep happens with no yield in between, so a request sees one or the other; the
slow parts (stopping the engine and freeing memory, loading) run on worker
threads under a lock that serializes them."""

from __future__ import annotations

import logging
import time

from flask import request

from .offload import offload

log = logging.getLogger("pyllama.server")

EXEMPT = {("GET", "/health"), ("GET", "/v1/health"), ("GET", "/props"), ("GET", "/models"), ("GET", "/v1/models"),
          ("GET", "/metrics")}


def exempt() -> bool:
    """A request that neither wakes the model nor counts as activity."""
    return request.method == "OPTIONS" or (request.method, request.path) in EXEMPT or request.blueprint == "webui"


def _tell_router(sleeping: bool) -> None:
    """A router's child says so: the router shows the model as sleeping (llama-server's status)."""
    from .router.child import report
    report(sleeping=sleeping)


class Sleeper:
    def __init__(self, state, idle_s: float):
        import gevent.lock

        self.state = state
        self.idle_s = idle_s
        self.in_flight = 0                    # requests that count, not yet finished
        self.last_request = time.monotonic()  # when one last started or ended
        self._switch = gevent.lock.Semaphore()  # one sleep or wake at a time
        self._watcher = None

    def start(self) -> None:
        import gevent

        self._watcher = gevent.spawn(self._watch)

    # -- request hooks (the app's before_request / teardown_request) ------------------
    def begin(self) -> None:
        """A request that needs the model: counted, and the model woken (this greenlet
        waits for the load) when asleep."""
        self.in_flight += 1
        self.last_request = time.monotonic()
        if self.state.sleeping:
            self.wake()

    def end(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.last_request = time.monotonic()

    # -- the switches ---------------------------------------------------------------
    def wake(self) -> None:
        st = self.state
        with self._switch:
            if not st.sleeping:
                return  # another request woke it meanwhile
            log.info("waking up: loading the model")
            t0 = time.monotonic()
            try:
                offload(st.load_model)
            except Exception as e:  # noqa: BLE001 - as at start-up (llama-server aborts): the process ends
                st.load_error = " ".join(str(e).split()) or type(e).__name__
                log.error("failed to reload the model after sleeping: %s", st.load_error)
                st.on_fatal(st.load_error)
                raise
            log.info("awake after %.1f s", time.monotonic() - t0)
            _tell_router(sleeping=False)

    def idle_for(self) -> float:
        """Seconds since anything happened (0 while something runs or waits)."""
        st = self.state
        engine = st.engine
        if self.in_flight or engine is None or not engine.idle():
            return 0.0
        return time.monotonic() - max(self.last_request, engine.last_active)

    def sleep(self) -> bool:
        """Unload now if still idle; True when it went to sleep."""
        st = self.state
        with self._switch:
            if st.sleeping or st.engine is None or self.idle_for() < self.idle_s:
                return False
            engine, llm = st.engine, st.llm
            st.sleeping = True        # from here on a request wakes it (after this switch)
            st.engine = st.llm = None
            log.info("no request for %.0f s: sleeping (the model is unloaded until the next request)", self.idle_s)
            offload(st.unload, engine, llm)
            del engine, llm
            _tell_router(sleeping=True)
            return True

    def _watch(self) -> None:
        import gevent

        step = min(1.0, self.idle_s / 4)
        while True:
            gevent.sleep(step)
            try:
                if not self.state.sleeping and self.idle_for() >= self.idle_s:
                    self.sleep()
            except Exception:  # noqa: BLE001 - the watcher must not die
                log.exception("sleep watcher")
