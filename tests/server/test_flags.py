"""Every flag, from its declaration (server/config.py): each of its names parses on the
command line, its LLAMA_ARG_* variable sets it, a switch's off names and LLAMA_ARG_NO_*
turn it off; and llama-server's 2026 flag table (tests/data) is covered, with the same
variable names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyllama.server.cli import ACTIONS, parser
from pyllama.server.config import ServerConfig, resolve
from pyllama.server.flags import declared, negative_env, normalize_argv, names_of

DATA = Path(__file__).resolve().parents[1] / "data"
FLAGS = declared(ServerConfig)


def config(*argv: str, **environ: str) -> ServerConfig:
    argv = normalize_argv(list(argv), names_of(ServerConfig))
    return resolve(parser().parse_args(argv), environ)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("flagfiles")
    (d / "keys").write_text("# a comment\nk1\n\nk2\n")
    (d / "g.gbnf").write_text('root ::= "a"\n')
    (d / "s.json").write_text('{"type": "object"}')
    (d / "t.jinja").write_text("{{ messages }}")
    (d / "ui.json").write_text('{"theme": "dark"}')
    (d / "presets.ini").write_text("[m]\nctx-size = 512\n")
    (d / "models").mkdir()
    (d / "slots").mkdir()
    return d


def special(dest: str, files: Path):
    """(command-line values, expected field value) for flags whose values must be files or
    well-formed text; None for the others."""
    return {
        "api_key_file": ([str(files / "keys")], str(files / "keys")),
        "grammar_file": ([str(files / "g.gbnf")], str(files / "g.gbnf")),
        "json_schema_file": ([str(files / "s.json")], str(files / "s.json")),
        "chat_template_file": ([str(files / "t.jinja")], str(files / "t.jinja")),
        "ui_config_file": ([str(files / "ui.json")], str(files / "ui.json")),
        "ui_config": (['{"a": 1}'], '{"a": 1}'),
        "chat_template_kwargs": (['{"x": true}'], '{"x": true}'),
        "json_schema": (['{"type": "string"}'], '{"type": "string"}'),
        "grammar": (['root ::= "b"'], 'root ::= "b"'),
        "log_file": ([str(files / "log.txt")], str(files / "log.txt")),
        "log_prompts_dir": ([str(files / "prompts")], str(files / "prompts")),
        "host": (["0.0.0.0,::"], "0.0.0.0,::"),
        "api_prefix": (["/llm"], "/llm"),
        "override_kv": (["a.b=int:3"], ("a.b=int:3",)),
        "logit_bias": (["15+1"], ("15+1",)),
        "cpu_mask": (["0x3"], "0x3"),
        "cpu_mask_batch": (["3"], "3"),
        "cpu_range": (["0-1"], "0-1"),
        "cpu_range_batch": (["0-1"], "0-1"),
        "spec_draft_cpu_range": (["0-1"], "0-1"),
        "control_vector_layer_range": (["1", "3"], ("1", "3")),
        "control_vector_scaled": (["cv.gguf:0.5"], ("cv.gguf:0.5",)),
        "reasoning_format": (["deepseek"], "deepseek"),
        "reasoning": (["off"], "off"),
        "pooling": (["mean"], "mean"),
        "models_dir": ([str(files / "models")], str(files / "models")),
        "models_preset": ([str(files / "presets.ini")], str(files / "presets.ini")),
        "slot_save_path": ([str(files / "slots")], str(files / "slots")),
        "lora": (["a.gguf,b.gguf"], ("a.gguf,b.gguf",)),
        "lora_scaled": (["a.gguf:0.5"], ("a.gguf:0.5",)),
        "hf_repo": (["ggml-org/models:Q8_0"], "ggml-org/models:Q8_0"),
        "model_url": (["https://example.com/m.gguf"], "https://example.com/m.gguf"),
    }.get(dest)


def sample(dest: str, typ: type, default, f, files: Path) -> tuple[list[str], object]:
    """A valid value other than the default, as command-line words and as the field's value."""
    sp = special(dest, files)
    if sp is not None:
        return sp
    if f.choices:
        candidates = [c for c in f.choices if c != default]
    elif typ is int:
        candidates = [default + 1, 1, 2, 0, 5, -1]
    elif typ is float:
        candidates = [default + 0.5, 0.5, 0.25, 1.5]
    else:
        candidates = ["x", "other"]
    for c in candidates:
        value = (c,) if f.repeat else c
        if value == default:
            continue
        try:
            ServerConfig(**{dest: value})
        except ValueError:
            continue
        return [str(c)], value
    raise AssertionError(f"no sample value for {f.name}: give one in special()")


@pytest.mark.parametrize("dest, typ, default, f", FLAGS, ids=[f.name for *_, f in FLAGS])
def test_flag_parses_under_every_name_and_from_its_variable(dest, typ, default, f, files):
    if typ is bool:
        for name in f.names:
            assert getattr(config(name), dest) is True, name
        for name in f.off:
            assert getattr(config(name), dest) is False, name
        if f.env:
            assert getattr(config(**{f.env: "1"}), dest) is True
            assert getattr(config(**{f.env: "off"}), dest) is False
            with pytest.raises(ValueError):
                config(**{f.env: "maybe"})
            if negative_env(f):
                assert getattr(config(**{negative_env(f): "1"}), dest) is False
                # a flag beats its variable
                assert getattr(config(f.names[0], **{negative_env(f): "1"}), dest) is True
        return
    words, value = sample(dest, typ, default, f, files)
    for name in f.names:
        assert getattr(config(name, *words), dest) == value, name
    if f.repeat:  # repeated: the values add up
        assert getattr(config(f.names[0], *words, f.names[-1], *words), dest) == value + value
    if f.env:
        assert getattr(config(**{f.env: " ".join(words)}), dest) == value
        if f.choices or typ in (int, float):  # a flag beats its variable
            assert getattr(config(f.names[0], *words, **{f.env: str(default)}), dest) == value


def test_underscores_spell_dashes_as_in_llama_cpp():
    c = config("--ctx_size", "512", "--n_gpu_layers", "99", "--no_webui", "--cache_type_k=q8_0")
    assert (c.ctx_size, c.n_gpu_layers, c.webui, c.cache_type_k) == (512, "99", False, "q8_0")


def readme_rows() -> list[tuple[list[str], str | None]]:
    text = (DATA / "llama-server-README-2026-flags.md").read_text()
    rows = []
    for line in text.splitlines():
        m = re.match(r"\| `([^`]*)` \| (.*) \|$", line)
        if not m:
            continue
        names = re.findall(r"(?:^|, )(-{1,2}[A-Za-z0-9][\w.\-]*)", m.group(1))
        env = re.findall(r"\(env: ([A-Z_]+)\)", m.group(2))
        rows.append((names, env[0] if env else None))
    return rows


def test_every_flag_of_llama_servers_table_is_accepted_with_its_variable():
    ours = {n: f for _, _, _, f in FLAGS for n in f.all_names}
    actions = {n for names, _ in ACTIONS for n in names}
    rows = readme_rows()
    assert len(rows) > 250
    for names, env in rows:
        declared_here = [ours[n] for n in names if n in ours]
        if not declared_here:
            assert set(names) & actions, f"{names} is not accepted"
            continue
        f = declared_here[0]
        assert all(ours.get(n) is f for n in names), f"{names}: not all names are one flag's"
        assert f.env == env, f"{names}: variable {f.env}, llama-server's is {env}"


def test_flags_without_effect_warn_once_each_and_quiet_values_do_not():
    c = config("-ngl", "99", "-fa", "on", "-sm", "row", "-ts", "3,1", "-mg", "1", "--no-mmap", "-dev", "CUDA0",
               "--numa", "distribute", "-md", "draft.gguf", "-mm", "proj.gguf")
    names = [w.split()[0] for w in c.warnings]
    assert sorted(names) == sorted(["--flash-attn", "--device", "--n-gpu-layers", "--split-mode",
                                    "--tensor-split", "--main-gpu", "--model-draft", "--mmproj",
                                    "--mmap"])
    assert all("has no effect in pyllama" in w for w in c.warnings)
    quiet = config("-ngl", "0", "-sm", "none", "-dev", "none", "--spec-type", "none", "--mmap", "--cpu-moe",
                   "-ncmoe", "3", "--fit", "off", "--no-mmproj", "--swa-full", "-cram", "0")
    assert quiet.warnings == []
    assert ServerConfig().warnings == []


def test_readmes_flag_table_is_generated_from_the_declarations():
    import importlib.util

    tool = Path(__file__).resolve().parents[2] / "tools" / "gen_flags_table.py"
    spec = importlib.util.spec_from_file_location("gen_flags_table", tool)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    readme = gen.README.read_text(encoding="utf-8")
    assert gen.render(readme) == readme, "README.md's flag table is stale: run python tools/gen_flags_table.py"
    for _, _, _, f in FLAGS:  # every flag is in it, by its names
        assert f"`{', '.join(f.all_names)}" in readme, f.name
