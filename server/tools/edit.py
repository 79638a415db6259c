"""edit_file's text replacement, as llama-server's: each old_text must occur once in
the original content (counted after a whitespace/typography normalization, so a
near-duplicate counts too), edits must not overlap, and when some old_text only
matches after normalization, the lines it touches are rewritten from the normalized
text while every other line is kept byte for byte."""

from __future__ import annotations

from dataclasses import dataclass

_TRANSLATE = {}
for _c in "\u2018\u2019\u201a\u201b":
    _TRANSLATE[ord(_c)] = "'"
for _c in "\u201c\u201d\u201e\u201f":
    _TRANSLATE[ord(_c)] = '"'
for _c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212":
    _TRANSLATE[ord(_c)] = "-"
for _c in "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000":
    _TRANSLATE[ord(_c)] = " "


class EditError(Exception):
    """A refused edit: the tool answers {"error": message}."""


def normalize_line(line: str) -> str:
    """Trailing spaces, tabs and CRs dropped; smart quotes, dashes and special spaces as ASCII."""
    return line.rstrip(" \t\r").translate(_TRANSLATE)


def normalize(content: str) -> str:
    """normalize_line on every line; the line count and positions stay."""
    return "\n".join(normalize_line(line) for line in content.split("\n"))


def _split_nl(content: str) -> list[str]:
    out, start = [], 0
    while start < len(content):
        nl = content.find("\n", start)
        if nl < 0:
            out.append(content[start:])
            break
        out.append(content[start:nl + 1])
        start = nl + 1
    return out


def _count(content: str, needle: str) -> int:
    """Non-overlapping occurrences."""
    return content.count(needle) if needle else 0


@dataclass
class Match:
    edit_index: int
    index: int      # offset in the base content
    length: int
    new_text: str


def _apply(content: str, matches: list[Match], offset: int) -> str:
    for m in reversed(matches):  # ascending, non-overlapping
        i = m.index - offset
        content = content[:i] + m.new_text + content[i + m.length:]
    return content


def _apply_keeping_lines(original: str, base: str, matches: list[Match]) -> str:
    orig_lines = _split_nl(original)
    spans, offset = [], 0
    for line in _split_nl(base):
        spans.append((offset, offset + len(line)))
        offset += len(line)
    groups: list[list] = []  # [start_line, end_line (exclusive), matches]
    for m in matches:
        start = next((i for i, (s, e) in enumerate(spans) if s <= m.index < e), 0)
        end = start
        while end < len(spans) and spans[end][1] < m.index + m.length:
            end += 1
        end = min(end, len(spans) - 1) + 1
        if groups and start < groups[-1][1]:
            groups[-1][1] = max(groups[-1][1], end)
            groups[-1][2].append(m)
        else:
            groups.append([start, end, [m]])
    out, line_i = [], 0
    for start, end, ms in groups:
        out.extend(orig_lines[line_i:start])
        a, b = spans[start][0], spans[end - 1][1]
        out.append(_apply(base[a:b], ms, a))
        line_i = end
    out.extend(orig_lines[line_i:])
    return "".join(out)


def apply_edits(original: str, edits: list[tuple[str, str]], path: str) -> tuple[str, int]:
    """(new content, edits applied); EditError when an edit is refused."""
    norm_original = None
    any_fuzzy = False
    for i, (old, _) in enumerate(edits):
        if old in original:
            continue
        if norm_original is None:
            norm_original = normalize(original)
        if normalize(old) not in norm_original:
            raise EditError(f"could not find edits[{i}].old_text in {path}, it must match the file's current "
                            "content exactly")
        any_fuzzy = True
    if norm_original is None:
        norm_original = normalize(original)
    base = norm_original if any_fuzzy else original
    matches = []
    for i, (old, new) in enumerate(edits):
        needle = normalize(old) if any_fuzzy else old
        n = _count(norm_original, normalize(old))  # a whitespace-only duplicate still counts
        if n > 1:
            raise EditError(f"found {n} occurrences of edits[{i}].old_text in {path}, it must be unique")
        matches.append(Match(i, base.find(needle), len(needle), new))
    matches.sort(key=lambda m: m.index)
    for a, b in zip(matches, matches[1:]):
        if a.index + a.length > b.index:
            raise EditError(f"edits[{a.edit_index}] and edits[{b.edit_index}] overlap in {path}; merge them into "
                            "one edit or target disjoint regions")
    new = _apply_keeping_lines(original, base, matches) if any_fuzzy else _apply(base, matches, 0)
    if new == original:
        raise EditError("no changes made: the replacement(s) produced identical content")
    return new, len(matches)
