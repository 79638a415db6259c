"""llama.cpp's glob matching (common.cpp glob_match): `*` matches within one path
segment, `**` across segments, `?` one character other than '/', `[...]` a class
(`[!...]` negated, a leading `]` or `-` literal, `a-z` ranges; an unclosed `[` is
a literal). Patterns are compiled to regular expressions (cached) that accept
exactly the strings llama.cpp's recursive matcher accepts."""

from __future__ import annotations

import functools
import re

import regex

MAX_PATTERN = 4096  # longer include/exclude patterns are refused (builtin.py)
MATCH_TIMEOUT_S = 5.0  # one match may backtrack badly (many '*'): it then counts as no match


def _class(body: str) -> str:
    """The regex for a class body (between '[' and its ']'), as glob_class_match reads it."""
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    items: list[str] = []
    i = 0
    if body[:1] in ("]", "-"):
        items.append(re.escape(body[0]))
        i = 1
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-" and body[i + 2] != "]":
            lo, hi = body[i], body[i + 2]
            if lo <= hi:
                items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            i += 3
        else:
            items.append(re.escape(body[i]))
            i += 1
    if not items:
        return r"[\s\S]" if negated else "(?!)"
    return ("[^" if negated else "[") + "".join(items) + "]"


@functools.lru_cache(maxsize=256)
def compile_glob(pattern: str) -> "regex.Pattern":
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*" and pattern[i + 1:i + 2] == "*":
            out.append(r"[\s\S]*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] in "]-":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j < n:
                out.append(_class(pattern[i + 1:j]))
                i = j + 1
            else:
                out.append(re.escape("["))
                i += 1
        else:
            out.append(re.escape(c))
            i += 1
    # the `regex` module: it releases the GIL while matching and honours a timeout
    return regex.compile("".join(out), regex.DOTALL | regex.VERSION0)


def glob_match(pattern: str, text: str) -> bool:
    try:
        return compile_glob(pattern).fullmatch(text, concurrent=True, timeout=MATCH_TIMEOUT_S) is not None
    except TimeoutError:
        return False


def path_glob_match(pattern: str, rel_path: str) -> bool:
    """No '/' in the pattern: it matches the basename at any depth; else the whole
    relative path, anchored with "**/" unless it starts with "**" or "/"."""
    if "/" not in pattern:
        return glob_match(pattern, rel_path.rsplit("/", 1)[-1])
    if pattern == "**" or pattern.startswith("**/") or pattern.startswith("/"):
        return glob_match(pattern, rel_path)
    return glob_match("**/" + pattern, rel_path)
