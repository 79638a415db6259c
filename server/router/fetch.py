"""The child a router starts for POST /models (llama-server's download mode): fetches
one Hugging Face model (`user/model[:quant]`, every part of a split model) into the
Hugging Face cache, and tells the router how it goes, one line each on stdout:

    PYLLAMA_FETCH {"progress": {"url": ..., "done": N, "total": N}}
    PYLLAMA_FETCH {"result": "download_finished"}   (or "download_failed", with "error")

Exit code 0 when the model is in the cache. Run as
`python -m pyllama.server.router.fetch user/model[:quant]`; HF_TOKEN, HF_ENDPOINT and
the cache variables come from the environment. Like any router child it ends when the
router does (child.py)."""

from __future__ import annotations

import json
import os
import sys
import time

PREFIX = "PYLLAMA_FETCH "
EVERY_S = 0.25


def _say(message: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    from .child import guard
    guard()
    if len(argv) != 1:
        print("usage: python -m pyllama.server.router.fetch user/model[:quant]", file=sys.stderr)
        return 2
    name = argv[0]
    from pyllama import hf_hub
    from pyllama.errors import ModelLoadError

    repo = name.split(":")[0]
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    last = {"t": 0.0, "file": None}

    def progress(file: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if file == last["file"] and not finished and now - last["t"] < EVERY_S:
            return
        last.update(t=now, file=file)
        _say({"progress": {"url": f"{endpoint}/{repo}/resolve/main/{file}", "done": done, "total": total or 0}})

    try:
        path = hf_hub.download(name, token=os.environ.get("HF_TOKEN") or None, progress=progress)
    except ModelLoadError as e:
        _say({"result": "download_failed", "error": str(e)})
        print(f"error: {e}", file=sys.stderr)
        return 1
    _say({"result": "download_finished", "path": str(path)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
