"""JSON text of values that may be large (a completion with every token's n_probs
candidates: 49,152 of them per token with SmolLM2 when n_probs is clamped to the
vocabulary), encoded piece by piece.

json.dumps runs in C and holds the GIL for the whole value: 18 MB took over a second,
during which neither /health nor a stream was served. Here any part of at most
PIECE nodes is encoded by the C encoder at once, and larger lists and objects are
joined from their parts in Python, so the GIL changes hands between pieces. The
text is the same as json.dumps gives with the same separators."""

from __future__ import annotations

import json

PIECE = 2048  # nodes encoded by one call of the C encoder


class RawJSON(str):
    """Text that already is JSON (built by a faster path, e.g. probability lists):
    dumps writes it as it is."""


def dumps(value, separators: tuple[str, str] = (", ", ": ")) -> str:
    enc = json.JSONEncoder(ensure_ascii=False, separators=separators)
    item_sep, key_sep = separators

    def walk(v) -> str:
        if isinstance(v, RawJSON):
            return str(v)
        if not isinstance(v, (list, dict)) or _small(v):
            return enc.encode(v)
        if isinstance(v, list):
            return "[" + item_sep.join(walk(x) for x in v) + "]"
        return "{" + item_sep.join(enc.encode(str(k) if not isinstance(k, str) else k) + key_sep + walk(x)
                                   for k, x in v.items()) + "}"

    return walk(value)


def _small(v) -> bool:
    """Whether v has at most PIECE nodes and no RawJSON (counting stops as soon as
    it has more)."""
    n = 0
    stack = [v]
    while stack:
        x = stack.pop()
        n += 1
        if n > PIECE or isinstance(x, RawJSON):
            return False
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return True
