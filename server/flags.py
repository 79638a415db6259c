"""A command-line flag, declared once on the config field it sets: its names, its
LLAMA_ARG_* variable, its default, its help and its check (config.py declares
pyllama-server's). The argparse arguments, -h, the environment reader, the checks,
the warnings for flags that have no effect here and the README's flag table are
all derived here from those declarations.

As llama.cpp's parser: a flag beats its variable; `--some_flag` is `--some-flag`;
a switch with off names (`--no-x`) is also turned off by `LLAMA_ARG_NO_X`; a
switch's variable takes 1/true/on/enabled or 0/false/off/disabled."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

ANY = object()  # in Flag.quiet: every value is already what pyllama does


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]           # ("-c", "--ctx-size"); the last one names the flag in messages
    help: str
    env: str | None = None           # its LLAMA_ARG_* variable; a flag beats its variable
    off: tuple[str, ...] = ()        # a switch's names that turn it off ("--no-webui")
    check: Callable[[Any], bool] | None = None  # a valid value passes, else: "<name> must <must>"
    must: str = ""
    sampling: str = ""               # the SamplingParams field whose server-wide default this is
    choices: tuple = ()              # the values it takes (checked; listed in -h)
    metavar: str = ""                # the value's name in -h and the README ("N", "FNAME", ...)
    repeat: bool = False             # may be given several times: the field is a tuple of the values
    nargs: int = 1                   # values per occurrence (2: "--control-vector-layer-range START END")
    default_text: str = ""           # how -h shows the default, when not the value itself
    noeffect: str = ""               # accepted, but pyllama cannot honour it: why (a warning when given)
    quiet: tuple = ()                # values of a noeffect flag that are what pyllama does anyway (no warning)

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def all_names(self) -> tuple[str, ...]:
        return self.names + self.off


def flag(*names: str, default: Any, help: str, **kw: Any) -> Any:
    """A config field set by the flag `names` (the field's type is the flag's type)."""
    if kw.get("repeat") and isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default, metadata={"flag": Flag(names, help, **kw)})


def _base(hint: Any) -> type:
    """bool | None -> bool; tuple[str, ...] -> str."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base(args[0])
    if origin in (tuple, list):
        return _base(typing.get_args(hint)[0])
    return hint


@functools.cache
def declared(cls: type) -> list[tuple[str, type, Any, Flag]]:
    """(field name, value type, default, flag) of each flag-set field of the dataclass
    `cls`, in declaration order (the order of -h). The value type of a repeated flag is
    its element's; of an optional switch (default None: "auto"), bool."""
    hints = typing.get_type_hints(cls)
    return [(f.name, _base(hints[f.name]), f.default, f.metadata["flag"])
            for f in dataclasses.fields(cls) if "flag" in f.metadata]


def default_text(default: Any, f: Flag, typ: type) -> str:
    if f.default_text:
        return f.default_text
    if typ is bool:
        return "auto" if default is None else ("enabled" if default else "disabled")
    if f.repeat:
        return "none" if not default else ", ".join(map(str, default))
    if default == "" or default is None:
        return "none"
    return str(default)


def help_text(typ: type, default: Any, f: Flag) -> str:
    """The flag's help as -h and the README show it."""
    text = f.help
    if f.choices:
        text += f" ({' | '.join(map(str, f.choices))})"
    text += f"; default: {default_text(default, f, typ)}"
    if f.noeffect:
        text += f" [accepted, no effect: {f.noeffect}]"
    return text


def metavar(typ: type, f: Flag) -> str:
    return f.metavar or {int: "N", float: "N", str: "STRING"}.get(typ, "VALUE")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argument per flag (a switch: one for on, one for off). Nothing is stored for
    a flag not given, so that its variable, then its default, can apply."""
    for dest, typ, default, f in declared(cls):
        env_note = f" (env: {f.env})" if f.env else ""
        text = help_text(typ, default, f) + env_note
        if typ is bool:
            parser.add_argument(*f.names, dest=dest, action="store_const", const=True, default=None, help=text)
            if f.off:
                parser.add_argument(*f.off, dest=dest, action="store_const", const=False,
                                    help=f"disable: {f.help}")
        else:
            kw: dict[str, Any] = dict(dest=dest, type=_parser_type(typ, f), default=None, metavar=metavar(typ, f),
                                      help=text.replace("%", "%%"))
            if f.nargs != 1:
                kw["nargs"] = f.nargs
                kw["metavar"] = tuple(metavar(typ, f).split()) if " " in metavar(typ, f) else None
            if f.repeat:
                kw["action"] = "append"
            parser.add_argument(*f.names, **kw)


def _parser_type(typ: type, f: Flag) -> Callable[[str], Any]:
    name = f.name

    def convert(text: str) -> Any:
        try:
            return parse_value(typ, text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {typ.__name__} value for {name}: {text!r}") from None
    return convert


def parse_value(typ: type, text: str) -> Any:
    if typ is int:
        return int(text.strip(), 0) if text.strip().lower().startswith(("0x", "-0x")) else int(text)
    return typ(text)


TRUTHY = ("1", "true", "on", "enabled", "yes")
FALSEY = ("0", "false", "off", "disabled", "no")


def env_bool(v: str, name: str = "") -> bool:
    s = v.strip().lower()
    if s in TRUTHY:
        return True
    if s in FALSEY:
        return False
    raise ValueError(f"{name or 'a switch variable'}: {v!r} is not a boolean (1/true/on/enabled or "
                     f"0/false/off/disabled)")


def negative_env(f: Flag) -> str | None:
    """llama.cpp's LLAMA_ARG_NO_X, which turns off a switch that has off names."""
    if f.env and f.off and f.env.startswith("LLAMA_ARG_"):
        return "LLAMA_ARG_NO_" + f.env[len("LLAMA_ARG_"):]
    return None


def _from_env(typ: type, f: Flag, text: str) -> Any:
    if typ is bool:
        return env_bool(text, f.env or "")
    try:
        value = parse_value(typ, text)
    except ValueError:
        raise ValueError(f"{f.env}: {text!r} is not a valid {typ.__name__} for {f.name}") from None
    if f.repeat:
        return (value,)
    if f.nargs != 1:
        raise ValueError(f"{f.env}: {f.name} takes {f.nargs} values, which a variable cannot give")
    return value


def given(cls: type, ns: argparse.Namespace | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The values given, each by its flag, else by its variable; the fields absent from
    the result keep their defaults. A variable that is not of the flag's type: ValueError."""
    values = {}
    for dest, typ, _, f in declared(cls):
        v = getattr(ns, dest, None) if ns is not None else None
        if v is not None:
            if f.repeat:
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            elif isinstance(v, list):
                v = tuple(v)
        if v is None and negative_env(f) and negative_env(f) in environ:
            v = False
        if v is None and f.env and f.env in environ:
            v = _from_env(typ, f, environ[f.env])
        if v is not None:
            values[dest] = v
    return values


def check(config: Any) -> None:
    """ValueError("<name> must <must>") for the first value its flag's check or choices refuse."""
    for dest, typ, default, f in declared(type(config)):
        value = getattr(config, dest)
        if f.choices and value != default:
            values = value if f.repeat else (value,)
            bad = [v for v in values if v not in f.choices]
            if bad:
                raise ValueError(f"{f.name} must be one of {', '.join(map(str, f.choices))} (got {bad[0]!r})")
        if f.check is not None and not f.check(value):
            raise ValueError(f"{f.name} must {f.must}")


def no_effect_warnings(config: Any) -> list[str]:
    """One line per flag given that pyllama accepts but cannot honour (a value that is
    what pyllama does anyway says nothing)."""
    out = []
    for dest, _, default, f in declared(type(config)):
        if not f.noeffect:
            continue
        value = getattr(config, dest)
        if value == default or ANY in f.quiet or value in f.quiet:
            continue
        out.append(f"{f.name} has no effect in pyllama: {f.noeffect}")
    return out


def normalize_argv(argv: Sequence[str], known: set[str]) -> list[str]:
    """llama.cpp's spelling rule: in a `--long_name`, underscores stand for dashes
    (`--ctx_size 512`). Values (anything not an option we know) are left alone."""
    out = []
    for a in argv:
        if a.startswith("--") and "_" in a:
            name, eq, value = a.partition("=")
            dashed = name.replace("_", "-")
            if dashed in known:
                a = dashed + eq + value
        out.append(a)
    return out


def names_of(cls: type) -> set[str]:
    return {n for _, _, _, f in declared(cls) for n in f.all_names}
