"""LoRA adapters on the server: --lora / --lora-scaled load them, GET /lora-adapters
lists them with their global scales, POST /lora-adapters sets those (an adapter
left out goes to 0), and a request's `lora: [{"id", "scale"}]` overrides them for
that request alone (adapters it leaves out: 0). An empty `lora` list, like none,
means the global scales (as llama-server's code has it).

A request's adapters are applied per sequence in native code, so requests with
different adapters share batches; a slot's cached prompt is reused only by a
request with the same adapters and scales (pyllama.engine)."""

from __future__ import annotations

import math

from .errors import bad_request


def adapters_json(st) -> list[dict]:
    """GET /lora-adapters."""
    return [{"id": info.id, "path": info.path, "scale": st.lora_scales[info.id], "task_name": info.task_name,
             "prompt_prefix": info.prompt_prefix} for info in st.lora_infos]


def parse_entries(value, n_adapters: int) -> dict[int, float]:
    """[{"id": i, "scale": s}, ...] -> {i: s}; a 400 for anything else or an unknown id."""
    if not isinstance(value, list):
        raise bad_request("Error: 'lora' must be an array of objects with 'id' and 'scale' fields")
    out: dict[int, float] = {}
    for entry in value:
        if not isinstance(entry, dict):
            raise bad_request("Error: 'lora' must be an array of objects with 'id' and 'scale' fields")
        i, scale = entry.get("id"), entry.get("scale", 0.0)
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_adapters:
            raise bad_request(f"invalid adapter id {i!r}: {n_adapters} LoRA adapters are loaded")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise bad_request(f"Field 'scale' of LoRA adapter {i}: expected a number")
        out[i] = float(scale)
    return out


def set_global(st, value) -> None:
    """POST /lora-adapters: every adapter's global scale (those left out: 0)."""
    if not isinstance(value, list):
        raise bad_request("Request body must be an array")
    entries = parse_entries(value, len(st.lora_infos))
    st.lora_scales = [entries.get(i, 0.0) for i in range(len(st.lora_infos))]


def request_scales(st, body: dict) -> tuple[float, ...]:
    """The scales a request runs with, by adapter id; () when no adapter applies."""
    value = body.get("lora")
    if value is None or value == []:
        scales = list(st.lora_scales)
    else:
        entries = parse_entries(value, len(st.lora_infos))
        scales = [entries.get(i, 0.0) for i in range(len(st.lora_infos))]
    return tuple(scales) if any(scales) else ()
