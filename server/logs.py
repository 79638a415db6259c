"""pyllama-server's log, as llama-server's flags shape it: -lv (threshold: 0 generic
output, 1 errors, 2 warnings, 3 info, 4 trace, 5 debug), -v (everything),
--log-disable, --log-file (a copy in a file), --log-colors, --log-prefix (a level
letter: I, W, E, D), --log-timestamps (with the prefix: time since start,
minutes.seconds.ms.us), --log-jsonl (one JSON object per line, on stdout).

Every handler writes through a LogWriter (log_writer.py): a thread of its own, so a
reader that stops reading never holds up a request."""

from __future__ import annotations

import json
import logging
import sys

from .log_writer import LogWriter

_writers: list[LogWriter] = []

LEVEL_LETTERS = {logging.DEBUG: "D", logging.INFO: "I", logging.WARNING: "W", logging.ERROR: "E",
                 logging.CRITICAL: "E"}
COLORS = {logging.DEBUG: "\033[33m", logging.INFO: "\033[32m", logging.WARNING: "\033[35m",
          logging.ERROR: "\033[31m", logging.CRITICAL: "\033[31m"}
BLUE, RESET = "\033[34m", "\033[0m"
NOTHING = logging.CRITICAL + 10  # above every level: nothing is logged


def threshold(verbosity: int, verbose: bool, disabled: bool) -> int:
    """The Python logging level for llama.cpp's verbosity threshold."""
    if disabled:
        return NOTHING
    if verbose or verbosity >= 4:
        return logging.DEBUG
    return {0: NOTHING, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}.get(max(verbosity, 0), NOTHING)


def use_colors(setting: str, stream) -> bool:
    s = setting.lower()
    if s in ("on", "true", "1", "enabled"):
        return True
    if s in ("off", "false", "0", "disabled"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())  # auto (-1)


class LineFormatter(logging.Formatter):
    """`[time ][L ]name: message`, as llama.cpp's log prints its lines."""

    def __init__(self, *, prefix: bool, timestamps: bool, colors: bool):
        super().__init__()
        self.prefix, self.timestamps, self.colors = prefix, timestamps, colors

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        head = ""
        if self.prefix:
            if self.timestamps:
                us = int(record.relativeCreated * 1000)  # since the process started logging
                stamp = f"{us // 60_000_000}.{us // 1_000_000 % 60:02d}.{us // 1000 % 1000:03d}.{us % 1000:03d}"
                head += f"{BLUE}{stamp}{RESET} " if self.colors else stamp + " "
            letter = LEVEL_LETTERS.get(record.levelno, "I")
            head += f"{COLORS.get(record.levelno, '')}{letter}{RESET} " if self.colors else letter + " "
        elif self.colors and record.levelno >= logging.WARNING:
            return f"{COLORS[record.levelno]}{text}{RESET}"
        return head + text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {"t": round(record.created, 6), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


def setup(cfg) -> None:
    """Configure the root logger from the config's logging flags (replaces earlier handlers)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    close()
    level = threshold(cfg.verbosity, cfg.verbose, cfg.log_disable)
    root.setLevel(level)
    if cfg.log_jsonl:
        console = logging.StreamHandler(_writer(sys.stdout))
        console.setFormatter(JsonFormatter())
    else:
        console = logging.StreamHandler(_writer(sys.stderr))
        console.setFormatter(LineFormatter(prefix=cfg.log_prefix, timestamps=cfg.log_timestamps,
                                           colors=use_colors(cfg.log_colors, sys.stderr)))
    root.addHandler(console)
    if cfg.log_file and not cfg.log_disable:
        fh = logging.StreamHandler(_writer(open(cfg.log_file, "a", encoding="utf-8")))
        fh.setFormatter(JsonFormatter() if cfg.log_jsonl else
                        LineFormatter(prefix=cfg.log_prefix, timestamps=cfg.log_timestamps, colors=False))
        root.addHandler(fh)
    # the library's own loggers follow the root's threshold
    logging.getLogger("pyllama").setLevel(logging.NOTSET)


def _writer(stream) -> LogWriter:
    w = LogWriter(stream)
    _writers.append(w)
    return w


def close() -> None:
    """Write what the log has queued (a few seconds at most) and stop its writers."""
    while _writers:
        _writers.pop().close()


def access_log():
    """Where the HTTP server's one line per request goes: the log, at info level."""
    return logging.getLogger("pyllama.http")
