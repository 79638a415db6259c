"""The models a router serves, and the flags each one's server is started with, from
llama-server's three sources (later ones override earlier ones, name by name):

1. the cache: the default models already fetched into pyllama's model cache (by their
   names, e.g. `smollm2-135m`), and the GGUF models in the Hugging Face cache (as
   `user/model:QUANT`, fetched with -hf);
2. `--models-dir DIR`: each `NAME.gguf` in it is model NAME; each folder holding GGUF
   files is one model named by the folder (its first part for a split model; a file
   named `mmproj*` is a projector, never the model);
3. `--models-preset FILE`: an INI file, one `[NAME]` section per model, with `[*]` for
   what every model gets. Keys are flag names without their dashes, long or short
   (`ctx-size`, `c`), or their LLAMA_ARG_* variables; a switch takes true/false (its
   `no-` name inverts it). A section that is not a model of another source names its
   model with `model` (a path or a default model name), `hf-repo`, `docker-repo` or
   `model-url`;
   without any, a section named after a default model name is that model. Keys only
   presets have: `load-on-startup`, `stop-timeout` (seconds an unloaded model's server
   gets to stop before it is killed; default 10), `dedup-cache-models` (in [*] or a
   section: the cache's entries a preset fetches with hf-repo or spec-draft-hf are not
   listed, but stay usable by name). `version` is ignored.

A model's flags, lowest first: the preset's `[*]`, its own section, then the router's own
command line (`pyllama-server -c 8192 --models-dir ...`: every child gets -c 8192). The
router sets --host, --port and --alias itself; API keys, TLS and the router's own flags
are never passed on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyllama.hf_hub import is_model_file, pick_model, split_info
from pyllama.model_registry import DEFAULT_MODELS, cache_dir
from pyllama.unpatched import stdlib_for_import

from ..config import ServerConfig
from ..flags import Flag, declared, env_bool

PRESET_ONLY = ("load-on-startup", "stop-timeout", "dedup-cache-models")
DEFAULT_STOP_TIMEOUT = 10
GLOBAL = "*"
DEFAULT_SECTION = "default"  # keys before any [section]

# never passed to a child: the router's own business (llama-server's unset_reserved_args)
RESERVED = {"ssl_key_file", "ssl_cert_file", "api_key", "api_key_file", "models_dir", "models_preset",
            "models_max", "models_autoload", "host", "port", "reuse_port", "api_prefix"}
# what names a model: the router's command line never passes these on to every child
MODEL_KEYS = {"model", "alias", "hf_repo", "hf_file", "model_url", "docker_repo"}


class PresetError(ValueError):
    pass


@dataclass
class ModelSpec:
    """One model the router can serve."""

    name: str
    source: str                                   # "cache" | "models_dir" | "preset"
    # config field -> value, as text (a repeated flag's or a START END flag's: a tuple of texts)
    options: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    preset_only: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    hidden: bool = False  # a cache entry a preset fetches itself (dedup-cache-models): usable, not listed

    @property
    def load_on_startup(self) -> bool:
        return env_bool(self.preset_only.get("load-on-startup", "false"))

    @property
    def stop_timeout(self) -> float:
        try:
            return float(self.preset_only.get("stop-timeout", DEFAULT_STOP_TIMEOUT))
        except ValueError:
            return DEFAULT_STOP_TIMEOUT


def _keys() -> dict[str, tuple[str, Flag, bool]]:
    """Every key a preset may use -> (config field, flag, whether the key inverts a switch)."""
    out: dict[str, tuple[str, Flag, bool]] = {}
    for dest, _, _, f in declared(ServerConfig):
        for n in f.names:
            out[n.lstrip("-")] = (dest, f, False)
        for n in f.off:
            out[n.lstrip("-")] = (dest, f, True)
        if f.env:
            out[f.env] = (dest, f, False)
    return out


def _types() -> dict[str, type]:
    return {dest: typ for dest, typ, _, _ in declared(ServerConfig)}


_LINE_KV = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*(.*?)[ \t]*(?:[;#].*)?$")
_LINE_SECTION = re.compile(r"^\[[ \t]*([^\]]*?)[ \t]*\][ \t]*(?:[;#].*)?$")


def parse_ini(text: str, origin: str = "preset file") -> dict[str, dict[str, str]]:
    """Sections -> {key: value}, as llama.cpp's parser reads them: `[name]` headers,
    `key = value` lines (a value ends at a `;` or `#` comment), comment and blank lines;
    keys before the first header belong to the section "default". A later key wins."""
    out: dict[str, dict[str, str]] = {}
    section = DEFAULT_SECTION
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        m = _LINE_SECTION.match(line)
        if m:
            section = m.group(1)
            out.setdefault(section, {})
            continue
        m = _LINE_KV.match(line)
        if not m:
            raise PresetError(f"{origin}, line {n}: cannot parse {raw.strip()!r} (expected [section] or key = value)")
        out.setdefault(section, {})[m.group(1)] = m.group(2)
    return out


def preset_options(name: str, values: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """A section's keys as (config field -> text value, preset-only key -> value);
    PresetError for a key that is no flag, or a value of the wrong type."""
    keys, types = _keys(), _types()
    options: dict[str, str] = {}
    only: dict[str, str] = {}
    for key, value in values.items():
        if key == "version":
            continue
        if key in PRESET_ONLY:
            only[key] = value
            continue
        if key not in keys:
            raise PresetError(f"option '{key}' not recognized in preset '{name}'")
        dest, f, inverted = keys[key]
        typ = types[dest]
        if typ is bool:
            on = env_bool(value)
            value = "false" if on == inverted else "true"
        else:
            if f.nargs != 1:  # "control-vector-layer-range = 1 3"
                value = tuple(value.split())
                if len(value) != f.nargs:
                    raise PresetError(f"preset '{name}': {f.name} takes {f.nargs} values, got {len(value)}")
            try:
                for v in (value if isinstance(value, tuple) else (value,)):
                    typ(v)
            except ValueError:
                raise PresetError(f"preset '{name}': {f.name} must be {typ.__name__}, got {value!r}") from None
        options[dest] = value
    return options, only


def command_line_options(given: dict[str, Any]) -> dict[str, str | tuple[str, ...]]:
    """The router's own flags (config field -> typed value, as given on its command line)
    as the options every child gets: the reserved ones and those naming a model removed.
    A repeated flag's values stay a tuple (each passed on as one occurrence)."""
    out: dict[str, str | tuple[str, ...]] = {}
    for dest, v in given.items():
        if dest in RESERVED or dest in MODEL_KEYS:
            continue
        if isinstance(v, bool):
            out[dest] = "true" if v else "false"
        elif isinstance(v, tuple):
            out[dest] = tuple(" ".join(map(str, x)) if isinstance(x, tuple) else str(x) for x in v)
        else:
            out[dest] = str(v)
    return out


def child_args(options: dict[str, str | tuple[str, ...]]) -> list[str]:
    """Options (config field -> text) as a pyllama-server command line, in declaration
    order, each flag by its long name (a switch set false by its `no-` name, or left out
    when it has none; a repeated flag once per value; a START END flag with its values)."""
    args: list[str] = []
    for dest, typ, _, f in declared(ServerConfig):
        if dest not in options:
            continue
        v = options[dest]
        if typ is bool:
            if env_bool(v):
                args.append(f.name)
            elif f.off:
                args.append(f.off[-1])
        elif f.nargs != 1:
            args += [f.name, *(v.split() if isinstance(v, str) else v)]
        elif isinstance(v, tuple):
            for x in v:
                args += [f.name, x]
        else:
            args += [f.name, v]
    return args


# -- sources -----------------------------------------------------------------------

def cache_models() -> dict[str, ModelSpec]:
    """The default models already in pyllama's cache, and the GGUF models in the Hugging
    Face cache (when huggingface_hub is installed)."""
    out: dict[str, ModelSpec] = {}
    models = cache_dir() / "models"
    for name, src in DEFAULT_MODELS.items():
        if (models / src.filename).is_file():
            out[name] = ModelSpec(name, "cache", {"model": name})
    for name in _hf_cached():
        out[name] = ModelSpec(name, "cache", {"hf_repo": name})
    return out


def hf_cache_dir() -> str | None:
    """Where huggingface_hub keeps its models, read from the environment now (its own
    constant is fixed when it is first imported): HF_HUB_CACHE, else HF_HOME/hub, else
    its default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _deduplicated(final: dict[str, ModelSpec], custom: dict[str, ModelSpec], glob: ModelSpec) -> set[str]:
    """The cache entries hidden by dedup-cache-models (in [*] or in a preset's own section):
    those the preset's hf-repo and spec-draft-hf name (`user/model:QUANT`, or without a quant
    the entry the cached files give, as -hf picks it). They stay usable by name."""
    cached: dict[str, list[str]] = {}
    for name, spec in final.items():
        if spec.source == "cache" and ":" in name:
            repo, tag = name.rsplit(":", 1)
            cached.setdefault(repo, []).append(tag)
    hidden = set()
    for name, spec in custom.items():
        on = spec.preset_only.get("dedup-cache-models", glob.preset_only.get("dedup-cache-models", "false"))
        if not env_bool(on):
            continue
        for key in ("hf_repo", "spec_draft_hf"):
            ref = spec.options.get(key)
            if not isinstance(ref, str) or not ref:
                continue
            repo, _, tag = ref.partition(":")
            tags = cached.get(repo, [])
            if not tag:  # the quant -hf would take among the cached files
                chosen = pick_model([f"x-{t}.gguf" for t in tags])
                tag = split_info(chosen)[1] if chosen else ""
            match = next((t for t in tags if t.upper() == tag.upper()), None)
            if match is not None and f"{repo}:{match}" not in custom:
                hidden.add(f"{repo}:{match}")
    return hidden


def _hf_cached() -> list[str]:
    try:
        with stdlib_for_import():  # huggingface_hub may import trio, which probes the OS
            from huggingface_hub import scan_cache_dir
        info = scan_cache_dir(hf_cache_dir())
    except Exception:  # noqa: BLE001 - not installed, or no cache yet
        return []
    names = set()
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            for f in rev.files:
                rel = str(Path(f.file_path).relative_to(rev.snapshot_path))
                if is_model_file(rel):
                    _, tag, index, _ = split_info(rel)
                    if index <= 1 and tag:  # as llama-server: a file without a quant tag is not listed
                        names.add(f"{repo.repo_id}:{tag}")
    return sorted(names)


def models_dir_models(folder: str) -> dict[str, ModelSpec]:
    root = Path(folder)
    if not root.is_dir():
        raise PresetError(f"--models-dir '{folder}' does not exist or is not a directory")
    out: dict[str, ModelSpec] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir():
            model = first_shard = ""
            for f in sorted(os.scandir(entry.path), key=lambda e: e.name):
                if not f.name.endswith(".gguf") or not f.is_file():
                    continue
                if "mmproj" in f.name:
                    continue
                if "-00001-of-" in f.name:
                    first_shard = f.path
                else:
                    model = model or f.path
            path = first_shard or model
            if path:
                out[entry.name] = ModelSpec(entry.name, "models_dir", {"model": os.path.abspath(path)})
        elif entry.name.endswith(".gguf") and entry.is_file():
            name = entry.name.replace(".gguf", "")
            out[name] = ModelSpec(name, "models_dir", {"model": os.path.abspath(entry.path)})
    return out


def preset_models(path: str) -> tuple[dict[str, ModelSpec], ModelSpec]:
    """The presets of an INI file and its [*] section."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PresetError(f"cannot read --models-preset '{path}': {e.strerror or e}") from None
    sections = parse_ini(text, path)
    glob = ModelSpec(GLOBAL, "preset")
    out: dict[str, ModelSpec] = {}
    for name, values in sections.items():
        options, only = preset_options(name, values)
        spec = ModelSpec(name, "preset", options, only)
        if name == GLOBAL:
            glob = spec
        elif name != DEFAULT_SECTION or options or only:
            out[name] = spec
    return out, glob


def load_models(config: ServerConfig, command_line: dict[str, Any]) -> dict[str, ModelSpec]:
    """Every model of every source, with its options in their order of precedence (see
    the module's docstring); PresetError for a preset that names no model, and for names
    and aliases that collide."""
    cached = cache_models()
    local = models_dir_models(config.models_dir) if config.models_dir else {}
    custom, glob = preset_models(config.models_preset) if config.models_preset else ({}, ModelSpec(GLOBAL, "preset"))
    final: dict[str, ModelSpec] = {}
    for spec in list(cached.values()) + list(local.values()):
        final[spec.name] = spec
    for name, spec in custom.items():
        if name in final:
            base = final[name]
            final[name] = ModelSpec(name, "preset", {**base.options, **spec.options}, spec.preset_only)
        else:
            final[name] = spec
    hidden = _deduplicated(final, custom, glob)
    base = command_line_options(command_line)
    out: dict[str, ModelSpec] = {}
    for name, spec in sorted(final.items()):
        options = {**glob.options, **spec.options, **base}
        only = {**glob.preset_only, **spec.preset_only}
        if not any(options.get(k) for k in ("model", "hf_repo", "docker_repo", "model_url")):
            if name in DEFAULT_MODELS:
                options["model"] = name
            else:
                raise PresetError(f"preset '{name}' names no model: give it model, hf-repo, docker-repo or "
                                  "model-url")
        aliases = [a.strip() for a in options.get("alias", "").split(",") if a.strip()]
        out[name] = ModelSpec(name, spec.source, options, only, aliases, hidden=name in hidden)
    names = set(out)
    seen: dict[str, str] = {}
    for spec in out.values():
        for a in spec.aliases:
            if a in names and a != spec.name:
                raise PresetError(f"alias '{a}' for model '{spec.name}' conflicts with an existing model name")
            if a in seen:
                raise PresetError(f"alias '{a}' for model '{spec.name}' conflicts with alias of model '{seen[a]}'")
            seen[a] = spec.name
    return out
