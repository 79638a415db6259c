"""POST /slots/{id}?action=save|restore|erase over real HTTP: llama-server's shapes
and errors, a restored slot that continues exactly as if never saved, hostile file
names, and damaged or foreign files answered with a 400 (the server goes on)."""

from __future__ import annotations

import os

import pytest

from helpers.server_process import ServerProcess

PROMPT = "The three primary colors are red, yellow and"


@pytest.fixture(scope="module")
def slots_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("slots")


@pytest.fixture(scope="module")
def srv(smollm2_path, slots_dir):
    s = ServerProcess("smollm2-135m", "-np", "2", "-c", "2048", "-t", "2", "--slot-save-path", str(slots_dir))
    yield s
    s.stop()


def complete(srv, prompt, n=16, id_slot=0, **kw) -> dict:
    r = srv.post("/completion", {"prompt": prompt, "n_predict": n, "temperature": 0, "id_slot": id_slot,
                                 "return_tokens": True, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def action(srv, id_slot, name, filename=None):
    return srv.post(f"/slots/{id_slot}?action={name}", None if filename is None else {"filename": filename})


def test_save_erase_restore_continues_identically(srv, slots_dir):
    first = complete(srv, PROMPT)
    follow = PROMPT + first["content"] + " Then the secondary colors are"
    r = action(srv, 0, "save", "colors.bin")
    assert r.status_code == 200, r.text
    saved = r.json()
    assert list(saved) == ["id_slot", "filename", "n_saved", "n_written", "timings"]
    assert saved["id_slot"] == 0 and saved["filename"] == "colors.bin"
    assert saved["n_saved"] == first["tokens_evaluated"] + first["tokens_predicted"] - 1
    assert saved["n_written"] == os.path.getsize(slots_dir / "colors.bin")
    assert list(saved["timings"]) == ["save_ms"]

    kept = complete(srv, follow, 24)  # the slot as it was: never saved
    assert kept["timings"]["cache_n"] == saved["n_saved"]

    r = action(srv, 0, "erase")
    assert r.status_code == 200 and r.json() == {"id_slot": 0, "n_erased": kept["tokens_evaluated"] +
                                                 kept["tokens_predicted"] - 1}
    assert complete(srv, "Unrelated words", 2)["timings"]["cache_n"] == 0
    action(srv, 0, "erase")

    r = action(srv, 0, "restore", "colors.bin")
    assert r.status_code == 200, r.text
    restored = r.json()
    assert list(restored) == ["id_slot", "filename", "n_restored", "n_read", "timings"]
    assert (restored["n_restored"], restored["n_read"]) == (saved["n_saved"], saved["n_written"])
    assert list(restored["timings"]) == ["restore_ms"]
    warm = complete(srv, follow, 24)
    assert warm["timings"]["cache_n"] == saved["n_saved"]
    assert warm["tokens"] == kept["tokens"] and warm["content"] == kept["content"]

    assert action(srv, 1, "restore", "colors.bin").status_code == 200  # into the other slot
    other = complete(srv, follow, 24, id_slot=1)
    assert other["timings"]["cache_n"] == saved["n_saved"] and other["tokens"] == kept["tokens"]


def test_errors_as_llama_server_gives_them(srv, server):
    r = server.post("/slots/0?action=save", {"filename": "x.bin"})  # started without --slot-save-path
    assert r.status_code == 501
    assert r.json()["error"] == {"code": 501, "type": "not_supported_error",
                                 "message": "This server does not support slots action. Start it with "
                                            "`--slot-save-path`"}
    for path, message in [("/slots/abc?action=save", "Invalid slot ID"), ("/slots/2?action=save", "Invalid slot ID"),
                          ("/slots/-1?action=erase", "Invalid slot ID"), ("/slots/0?action=load", "Invalid action"),
                          ("/slots/0", "Invalid action")]:
        r = srv.post(path, {"filename": "x.bin"})
        assert (r.status_code, r.json()["error"]["message"]) == (400, message), path
    assert srv.post("/slots/0?action=save", {}).status_code == 400
    assert srv.post("/slots/0?action=save", {"filename": 7}).status_code == 400


HOSTILE = ["../escape.bin", "..", ".", "", "a/b.bin", "/etc/passwd", "a\\b.bin", "x" * 256, "nul\x00.bin",
           "tab\t.bin", "trailing.", " lead.bin", "trail.bin ", "dots..bin", "c:x.bin", "what?.bin", "pipe|.bin",
           "slash\u2215.bin", "back\u2216.bin", "dot\uff0e\uff0e.bin", "bom\ufeff.bin", "c1\x85.bin"]


def test_hostile_file_names_are_refused(srv, slots_dir):
    complete(srv, "Hello", 2)
    before = sorted(os.listdir(slots_dir))
    for name in HOSTILE:
        for act in ("save", "restore"):
            r = action(srv, 0, act, name)
            assert (r.status_code, r.json()["error"]["message"]) == (400, "Invalid filename"), (name, act)
    assert sorted(os.listdir(slots_dir)) == before
    assert not (slots_dir.parent / "escape.bin").exists()


def test_symlinks_never_lead_outside(srv, slots_dir, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"precious")
    link = slots_dir / "link.bin"
    link.symlink_to(outside)
    r = action(srv, 0, "restore", "link.bin")
    assert r.status_code == 400 and "outside the slot directory" in r.json()["error"]["message"]
    complete(srv, "Hello", 2)
    assert action(srv, 0, "save", "link.bin").status_code == 200  # the link is replaced, not followed
    assert outside.read_bytes() == b"precious" and not link.is_symlink()
    assert action(srv, 0, "restore", "link.bin").status_code == 200


def test_damaged_and_foreign_files_are_400s(srv, slots_dir, smollm2_path):
    complete(srv, PROMPT, 8)
    assert action(srv, 0, "save", "good.bin").status_code == 200
    good = (slots_dir / "good.bin").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    cases = {
        "missing.bin": (None, "does not exist"),
        "truncated.bin": (good[:-100], "truncated"),
        "short.bin": (good[:50], "truncated"),
        "flipped.bin": (bytes(flipped), "checksum"),
        "empty.bin": (b"", "not a pyllama slot file"),
        "model.bin": (smollm2_path.read_bytes()[:4096], "not a pyllama slot file"),
        "longer.bin": (good + b"\0" * 10, "past its end"),
    }
    for name, (data, message) in cases.items():
        if data is not None:
            (slots_dir / name).write_bytes(data)
        r = action(srv, 1, "restore", name)
        assert r.status_code == 400 and message in r.json()["error"]["message"], (name, r.text)
    (slots_dir / "dir.bin").mkdir()
    assert action(srv, 1, "restore", "dir.bin").status_code == 400
    assert action(srv, 1, "save", "dir.bin").status_code == 400
    assert complete(srv, PROMPT, 8, id_slot=1)["tokens_predicted"] == 8  # the server goes on
