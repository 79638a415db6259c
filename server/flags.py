"""A command-line flag, declared once on the config field it sets: its names, its
LLAMA_ARG_* variable, its default, its help and its check (config.py declares
pyllama-server's). The argparse arguments, -h, the environment reader and the
checks are all derived here from those declarations."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]           # ("-c", "--ctx-size"); the last one names the flag in messages
    help: str
    env: str | None = None           # its LLAMA_ARG_* variable; a flag beats its variable
    off: tuple[str, ...] = ()        # a switch's names that turn it off ("--no-webui")
    check: Callable[[Any], bool] | None = None  # a valid value passes, else: "<name> must <must>"
    must: str = ""
    sampling: str = ""               # the SamplingParams field whose server-wide default this is
    repeat: bool = False             # may be given several times: the values joined by commas ("--lora a --lora b")

    @property
    def name(self) -> str:
        return self.names[-1]


def flag(*names: str, default: Any, help: str, **kw: Any) -> Any:
    """A config field set by the flag `names` (the field's type is the flag's type)."""
    return dataclasses.field(default=default, metadata={"flag": Flag(names, help, **kw)})


@functools.cache
def declared(cls: type) -> list[tuple[str, type, Any, Flag]]:
    """(field name, type, default, flag) of each flag-set field of the dataclass `cls`,
    in declaration order (the order of -h)."""
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], f.default, f.metadata["flag"])
            for f in dataclasses.fields(cls) if "flag" in f.metadata]


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argument per flag (a switch: one for on, one for off). Nothing is stored for
    a flag not given, so that its variable, then its default, can apply."""
    for dest, typ, default, f in declared(cls):
        env_note = f" (env: {f.env})" if f.env else ""
        if typ is bool:
            parser.add_argument(*f.names, dest=dest, action="store_const", const=True, default=None,
                                help=f"{f.help}; default {'on' if default else 'off'}{env_note}")
            if f.off:
                parser.add_argument(*f.off, dest=dest, action="store_const", const=False, help=f"disable: {f.help}")
        elif f.repeat:
            parser.add_argument(*f.names, dest=dest, action="append", default=None,
                                help=f"{f.help}; may be repeated{env_note}")
        else:
            parser.add_argument(*f.names, dest=dest, type=typ, default=None,
                                help=f"{f.help}; default {default!r}{env_note}")


def env_bool(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on", "enabled")


def given(cls: type, ns: argparse.Namespace | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The values given, each by its flag, else by its variable; the fields absent from
    the result keep their defaults. A variable that is not of the flag's type: ValueError."""
    values = {}
    for dest, typ, _, f in declared(cls):
        v = getattr(ns, dest, None) if ns is not None else None
        if isinstance(v, list):  # a repeated flag
            v = ",".join(v)
        if v is None and f.env and f.env in environ:
            v = env_bool(environ[f.env]) if typ is bool else typ(environ[f.env])
        if v is not None:
            values[dest] = v
    return values


def check(config: Any) -> None:
    """ValueError("<name> must <must>") for the first value its flag's check refuses."""
    for dest, _, _, f in declared(type(config)):
        if f.check is not None and not f.check(getattr(config, dest)):
            raise ValueError(f"{f.name} must {f.must}")
