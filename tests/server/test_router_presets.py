"""The router's model list and each model's flags, without processes: llama-server's
INI presets, --models-dir layouts, precedence, the child's command line."""

from __future__ import annotations

import pytest

from pyllama.server.cli import parser
from pyllama.server.config import ServerConfig, resolve
from pyllama.server.flags import given
from pyllama.server.router.presets import (PresetError, child_args, load_models, models_dir_models, parse_ini,
                                          preset_options)


def test_ini_syntax():
    text = """version = 1
; a comment
# another
[*]
c = 8192   ; trailing comment
[ggml-org/MY-MODEL-GGUF:Q8_0]
chat-template = chatml
jinja = true
c = 4096
"""
    assert parse_ini(text) == {"default": {"version": "1"}, "*": {"c": "8192"},
                               "ggml-org/MY-MODEL-GGUF:Q8_0": {"chat-template": "chatml", "jinja": "true", "c": "4096"}}
    with pytest.raises(PresetError, match="line 2"):
        parse_ini("[a]\nnot a line\n")


def test_keys_long_short_and_variables():
    options, only = preset_options("m", {"ctx-size": "4096", "np": "2", "LLAMA_ARG_THREADS": "3", "jinja": "false",
                                         "no-webui": "true", "no-context-shift": "false", "load-on-startup": "true",
                                         "stop-timeout": "5", "version": "1"})
    assert options == {"ctx_size": "4096", "parallel": "2", "threads": "3", "jinja": "false", "webui": "false",
                       "context_shift": "true"}
    assert only == {"load-on-startup": "true", "stop-timeout": "5"}
    with pytest.raises(PresetError, match="option 'n-gpu-layerz' not recognized in preset 'm'"):
        preset_options("m", {"n-gpu-layerz": "1"})
    with pytest.raises(PresetError, match="--ctx-size must be int"):
        preset_options("m", {"c": "big"})


def test_child_command_line():
    args = child_args({"model": "/m.gguf", "ctx_size": "4096", "jinja": "false", "metrics": "false",
                       "embedding": "true", "port": "123"})
    assert args == ["--model", "/m.gguf", "--port", "123", "--ctx-size", "4096", "--embeddings", "--no-jinja"]


def test_repeated_and_two_value_flags_reach_the_child():
    """A repeated flag of the router's command line is passed on once per value; a START END
    flag with both values; in a preset, one value of a repeated flag, and START END as two words."""
    from pyllama.server.router.presets import command_line_options

    ns = parser().parse_args(["--lora", "a.gguf", "--lora", "b.gguf,c.gguf", "-r", "x, y",
                              "--control-vector-layer-range", "1", "3", "--api-prefix", "/llm", "--reuse-port"])
    options = command_line_options(given(ServerConfig, ns, {}))
    assert options == {"lora": ("a.gguf", "b.gguf,c.gguf"), "reverse_prompt": ("x, y",),
                       "control_vector_layer_range": ("1", "3")}  # --api-prefix, --reuse-port: the router's own
    args = child_args(options)
    assert args == ["--reverse-prompt", "x, y", "--control-vector-layer-range", "1", "3",
                    "--lora", "a.gguf", "--lora", "b.gguf,c.gguf"]
    child = resolve(parser().parse_args(args), {})
    assert child.lora_adapters == [("a.gguf", 1.0), ("b.gguf", 1.0), ("c.gguf", 1.0)]
    assert child.reverse_prompts == ["x, y"] and child.control_vector_layer_range == ("1", "3")
    preset, _ = preset_options("m", {"lora": "d.gguf", "control-vector-layer-range": "2 4"})
    assert child_args(preset) == ["--control-vector-layer-range", "2", "4", "--lora", "d.gguf"]
    with pytest.raises(PresetError, match="takes 2 values"):
        preset_options("m", {"control-vector-layer-range": "2"})


def test_models_dir_layouts(tmp_path):
    (tmp_path / "llama-3.2-1b-Q4_K_M.gguf").write_bytes(b"")
    mm = tmp_path / "gemma-3-4b-it-Q8_0"
    mm.mkdir()
    (mm / "gemma-3-4b-it-Q8_0.gguf").write_bytes(b"")
    (mm / "mmproj-F16.gguf").write_bytes(b"")
    shards = tmp_path / "Kimi"
    shards.mkdir()
    for i in (2, 1, 3):
        (shards / f"Kimi-UD-IQ1_S-0000{i}-of-00003.gguf").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    found = {n: s.options["model"] for n, s in models_dir_models(str(tmp_path)).items()}
    assert found == {"Kimi": str(shards / "Kimi-UD-IQ1_S-00001-of-00003.gguf"),
                     "gemma-3-4b-it-Q8_0": str(mm / "gemma-3-4b-it-Q8_0.gguf"),
                     "llama-3.2-1b-Q4_K_M": str(tmp_path / "llama-3.2-1b-Q4_K_M.gguf")}
    with pytest.raises(PresetError, match="does not exist"):
        models_dir_models(str(tmp_path / "nope"))


def router_models(tmp_path, ini: str, *argv: str, models_dir: bool = True):
    (tmp_path / "dir").mkdir(exist_ok=True)
    (tmp_path / "dir" / "a.gguf").write_bytes(b"")
    (tmp_path / "p.ini").write_text(ini)
    full = [*(["--models-dir", str(tmp_path / "dir")] if models_dir else []), "--models-preset",
            str(tmp_path / "p.ini"), *argv]
    ns = parser().parse_args(full)
    return load_models(resolve(ns, {}), given(ServerConfig, ns, {}))


def test_precedence_global_then_section_then_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PYLLAMA_CACHE", str(tmp_path / "cache"))  # nothing cached
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    models = router_models(tmp_path, """[*]
c = 8192
t = 2
[a]
c = 4096
temp = 0.5
alias = first,second
[custom]
model = /somewhere/custom.gguf
load-on-startup = true
stop-timeout = 3
[smollm2-135m]
np = 3
[docked]
docker-repo = ai/smollm2:135M-Q4_0
""", "-t", "4", "--api-key", "secret", "--port", "9000", "--models-max", "1")
    assert set(models) == {"a", "custom", "smollm2-135m", "docked"}
    args = child_args(models["docked"].options)
    assert args[args.index("--docker-repo") + 1] == "ai/smollm2:135M-Q4_0"
    a = models["a"]
    assert a.source == "preset" and a.options["model"].endswith("/dir/a.gguf")
    assert (a.options["ctx_size"], a.options["threads"], a.options["temp"]) == ("4096", "4", "0.5")
    assert a.aliases == ["first", "second"]
    for reserved in ("api_key", "port", "models_max", "models_dir", "models_preset"):
        assert reserved not in a.options
    custom = models["custom"]
    assert custom.load_on_startup and custom.stop_timeout == 3 and custom.options["ctx_size"] == "8192"
    assert models["smollm2-135m"].options["model"] == "smollm2-135m"  # a default model name needs no model key
    assert not models["a"].load_on_startup and models["a"].stop_timeout == 10


def test_a_preset_must_name_its_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PYLLAMA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PresetError, match="preset 'lonely' names no model"):
        router_models(tmp_path, "[lonely]\nc = 1\n")
    with pytest.raises(PresetError, match="alias 'a' for model 'b' conflicts with an existing model name"):
        router_models(tmp_path, "[b]\nmodel = /x.gguf\nalias = a\n")


def test_router_flags():
    c = resolve(parser().parse_args(["--models-dir", "/m", "--no-models-autoload", "--models-max", "0"]), {})
    assert c.is_router and c.models_autoload is False and c.models_max == 0
    c = resolve(None, {"LLAMA_ARG_HF_REPO": "user/model:Q4_1", "LLAMA_ARG_MODELS_AUTOLOAD": "0"})
    assert not c.is_router and c.hf_repo == "user/model:Q4_1" and c.models_autoload is False
    with pytest.raises(ValueError, match="--models-max must be 0"):
        resolve(parser().parse_args(["--models-max", "-1"]), {})
    c = resolve(parser().parse_args(["-hf", "a/b", "-hff", "f.gguf", "-hft", "tok", "-mu", "http://x/y.gguf",
                                     "--offline"]), {})
    assert (c.hf_repo, c.hf_file, c.hf_token, c.model_url, c.offline) == ("a/b", "f.gguf", "tok", "http://x/y.gguf",
                                                                         True)
    assert resolve(None, {"HF_TOKEN": "t"}).hf_token == "t"


def test_the_router_answers_under_api_prefix(tmp_path, monkeypatch):
    from pyllama.server.router.app import create_router_app

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    app = create_router_app(ServerConfig(models_dir=str(tmp_path), api_prefix="/llm", models_autoload=False), {})
    client = app.test_client()
    assert client.get("/llm/health").json == {"status": "ok"}
    assert client.get("/llm/models").json["object"] == "list"
    assert client.get("/health").status_code == 404



def fake_hf_cache(root, repos: dict[str, list[str]]) -> None:
    """A Hugging Face cache holding these files (empty) of these repositories."""
    for repo, files in repos.items():
        d = root / ("models--" + repo.replace("/", "--"))
        (d / "blobs").mkdir(parents=True)
        (d / "refs").mkdir()
        (d / "refs" / "main").write_text("c0ffee")
        snap = d / "snapshots" / "c0ffee"
        snap.mkdir(parents=True)
        for i, name in enumerate(files):
            (d / "blobs" / f"blob{i}").write_bytes(b"GGUF")
            (snap / name).symlink_to(d / "blobs" / f"blob{i}")


def test_dedup_cache_models_hides_what_a_preset_fetches(tmp_path, monkeypatch):
    """As llama.cpp's test_router_dedup_cache_models: in a section or in [*]; hf-repo and
    spec-draft-hf, with or without a quant; the hidden entry stays usable by name."""
    monkeypatch.setenv("PYLLAMA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    fake_hf_cache(tmp_path / "hf", {"org/main": ["main-F32.gguf"], "org/draft": ["draft-F32.gguf"],
                                    "org/other": ["other-Q8_0.gguf", "other-Q4_K_M.gguf"]})
    section = "[m]\nhf-repo = org/main\nspec-draft-hf = org/draft\n"

    def listed(ini):
        return {n for n, s in router_models(tmp_path, ini, models_dir=False).items() if not s.hidden}

    every = {"m", "org/main:F32", "org/draft:F32", "org/other:Q8_0", "org/other:Q4_K_M"}
    assert listed(section) == every
    assert listed(section + "dedup-cache-models = 1\n") == every - {"org/main:F32", "org/draft:F32"}
    assert listed("[*]\ndedup-cache-models = true\n" + section) == every - {"org/main:F32", "org/draft:F32"}
    models = router_models(tmp_path, "[o]\nhf-repo = org/other\ndedup-cache-models = 1\n", models_dir=False)
    assert models["org/other:Q4_K_M"].hidden and not models["org/other:Q8_0"].hidden  # -hf's default quant
    assert models["org/other:Q4_K_M"].options["hf_repo"] == "org/other:Q4_K_M"  # still there, by name
