"""A JSON Schema `pattern` (ECMA-262 regular expression) as GBNF for the
contents of a JSON string. Characters JSON must escape are emitted in their
escaped form, so the grammar's text is valid JSON whose decoded value matches
the pattern. An unanchored side may carry up to PAD characters of any text. Features with no grammar
equivalent (lookaround, back-references, word boundaries, anchors inside the
pattern) raise PatternError rather than constrain loosely."""

from __future__ import annotations

MAX_CP = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
LINE_TERMINATORS = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]
DIGITS = [(0x30, 0x39)]
WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
# \s generates only whitespace both ECMA-262 and Python agree on; \S avoids every space either knows
SPACE_COMMON = [(0x09, 0x0D), (0x20, 0x20)]
SPACE_ANY = [(0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
             (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
JSON_SHORT = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}
MAX_DEPTH = 100
PAD = 32  # an unanchored side carries at most this many characters


class PatternError(ValueError):
    pass


def _normalize(ranges):
    out = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _complement(ranges):
    out, nxt = [], 0
    for a, b in _normalize(ranges):
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= MAX_CP:
        out.append((nxt, MAX_CP))
    return out


def _subtract(ranges, remove):
    keep = _complement(remove)
    out = []
    for a, b in _normalize(ranges):
        for c, d in keep:
            lo, hi = max(a, c), min(b, d)
            if lo <= hi:
                out.append((lo, hi))
    return out


def _cp(c: int) -> str:
    ch = chr(c)
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\x{c:02X}" if c < 0x100 else (f"\\u{c:04X}" if c < 0x10000 else f"\\U{c:08X}")


def _char_set(ranges, drop_controls: bool) -> str:
    """GBNF for one JSON-encoded character out of the set."""
    ranges = _normalize(ranges)
    special = [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), SURROGATES]
    plain = _subtract(ranges, special)
    alts = []
    if plain:
        alts.append("[" + "".join(_cp(a) if a == b else f"{_cp(a)}-{_cp(b)}" for a, b in plain) + "]")

    def has(c):
        return any(a <= c <= b for a, b in ranges)

    if has(0x22):
        alts.append('"\\\\\\""')
    if has(0x5C):
        alts.append('"\\\\\\\\"')
    if not drop_controls:
        for c in range(0x20):
            if has(c):
                alts.append(f'"\\\\{JSON_SHORT[c]}"' if c in JSON_SHORT else f'"\\\\u{c:04x}"')
    if not alts:
        raise PatternError("a character class that matches nothing")
    return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"


class _Parser:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0

    def peek(self, k=0):
        j = self.i + k
        return self.p[j] if j < len(self.p) else ""

    def fail(self, what):
        raise PatternError(f"{what} at offset {self.i}")

    # alternation -> list of sequences
    def alternation(self, depth: int) -> str:
        if depth > MAX_DEPTH:
            raise PatternError("pattern nested too deeply")
        alts = [self.sequence(depth)]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.sequence(depth))
        return alts[0] if len(alts) == 1 else "(" + " | ".join(f"({a})" if a else '""' for a in alts) + ")"

    def sequence(self, depth: int, top: bool = False) -> str:
        """Up to | or ) (at the top level, also up to a $ that ends the branch)."""
        items = []
        while self.i < len(self.p) and self.peek() not in "|)":
            if top and self.peek() == "$" and self.peek(1) in ("", "|"):
                break
            atom = self.atom(depth)
            items.append(self.quantified(atom))
        return " ".join(x for x in items if x)

    def quantified(self, atom: str) -> str:
        c = self.peek()
        if c in ("*", "+", "?"):
            self.i += 1
            q = c
        elif c == "{" and self._brace():
            lo, hi = self._brace()
            self.i = self.p.index("}", self.i) + 1
            q = f"{{{lo}}}" if lo == hi else f"{{{lo},{'' if hi is None else hi}}}"
        else:
            return atom
        if self.peek() == "?":  # lazy: same language when the whole string must match
            self.i += 1
        if self.peek() in ("*", "+", "?") or (self.peek() == "{" and self._brace()):
            self.fail("nothing to repeat")
        if not atom:
            self.fail("nothing to repeat")
        return f"({atom}){q}"

    def _brace(self):
        end = self.p.find("}", self.i)
        if end < 0:
            return None
        body = self.p[self.i + 1:end]
        parts = body.split(",")
        if len(parts) > 2 or not parts[0].isdigit() or (len(parts) == 2 and parts[1] and not parts[1].isdigit()):
            return None
        lo = int(parts[0])
        hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
        if hi is not None and hi < lo:
            raise PatternError("numbers out of order in {} quantifier")
        return lo, hi

    def atom(self, depth: int) -> str:
        c = self.peek()
        if c == "(":
            self.i += 1
            if self.peek() == "?":
                if self.peek(1) == ":":
                    self.i += 2
                elif self.peek(1) == "<" and self.peek(2) not in ("=", "!"):
                    end = self.p.find(">", self.i)
                    if end < 0:
                        self.fail("unterminated group name")
                    self.i = end + 1
                else:
                    raise PatternError("lookaround assertions are not supported")
            inner = self.alternation(depth + 1)
            if self.peek() != ")":
                self.fail("missing )")
            self.i += 1
            return f"({inner})" if inner else ""
        if c in ("*", "+", "?"):
            self.fail("nothing to repeat")
        if c == "{" and self._brace():
            self.fail("nothing to repeat")
        if c in ("^", "$"):
            raise PatternError("anchors inside the pattern are not supported")
        if c == ".":
            self.i += 1
            return _char_set(_complement(LINE_TERMINATORS), drop_controls=True)
        if c == "[":
            return self.char_class()
        if c == "\\":
            ranges, negated = self.escape(in_class=False)
            if negated:
                return _char_set(_complement(ranges), drop_controls=True)
            return _char_set(ranges, drop_controls=False)
        self.i += 1
        return _char_set([(ord(c), ord(c))], drop_controls=False)

    def escape(self, in_class: bool):
        """After a backslash: (ranges, negated)."""
        self.i += 1
        c = self.peek()
        if not c:
            self.fail("trailing backslash")
        self.i += 1
        classes = {"d": DIGITS, "w": WORD, "s": SPACE_COMMON}
        if c in classes:
            return classes[c], False
        if c in ("D", "W", "S"):
            return (SPACE_ANY if c == "S" else classes[c.lower()]), True
        simple = {"t": 9, "n": 10, "r": 13, "f": 12, "v": 11, "0": 0}
        if c in simple and not (c == "0" and self.peek().isdigit()):
            return [(simple[c], simple[c])], False
        if c == "b" and in_class:
            return [(8, 8)], False
        if c == "x" or c == "u":
            if c == "u" and self.peek() == "{":
                end = self.p.find("}", self.i)
                digits = self.p[self.i + 1:end] if end > 0 else ""
                self.i = end + 1
            else:
                n = 2 if c == "x" else 4
                digits = self.p[self.i:self.i + n]
                if len(digits) != n:
                    self.fail("bad \\" + c + " escape")
                self.i += n
            try:
                v = int(digits, 16)
            except ValueError:
                self.fail("bad \\" + c + " escape")
            if v > MAX_CP:
                self.fail("code point out of range")
            return [(v, v)], False
        if c == "c" and self.peek().isalpha():
            v = ord(self.peek()) % 32
            self.i += 1
            return [(v, v)], False
        if c.isalnum():
            raise PatternError(f"the escape \\{c} is not supported")
        return [(ord(c), ord(c))], False

    def char_class(self) -> str:
        self.i += 1
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        ranges = []
        first = True
        while True:
            c = self.peek()
            if not c:
                self.fail("unterminated character class")
            if c == "]" and not first:
                break
            if c == "]" and first:  # ECMA-262: [] matches nothing, [^] anything
                break
            first = False
            lo = self._class_atom(ranges)
            if lo is None:
                continue
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self._class_atom(ranges)
                if hi is None:
                    raise PatternError("a class escape cannot bound a range")
                if hi < lo:
                    self.fail("range out of order in character class")
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))
        self.i += 1
        if negated:
            return _char_set(_complement(ranges), drop_controls=True)
        return _char_set(ranges, drop_controls=False)

    def _class_atom(self, ranges):
        """One class member: a code point, or None when an escape added a whole set."""
        c = self.peek()
        if c == "\\":
            set_, negated = self.escape(in_class=True)
            if negated:
                ranges.extend(_subtract(_complement(set_), [(0, 0x1F)]))
                return None
            if len(set_) == 1 and set_[0][0] == set_[0][1]:
                return set_[0][0]
            ranges.extend(set_)
            return None
        self.i += 1
        return ord(c)


def pattern_to_gbnf(pattern: str) -> str:
    """GBNF for a JSON string ("..." included) whose value the pattern matches (searches)."""
    p = _Parser(pattern)
    anything = "(" + _char_set(_complement(LINE_TERMINATORS), drop_controls=True) + f"){{0,{PAD}}}"
    branches = []
    while True:  # each top-level branch, with its own anchors
        anchored_start = p.peek() == "^"
        p.i += anchored_start
        body = p.sequence(0, top=True)
        anchored_end = p.peek() == "$"
        p.i += anchored_end
        if p.peek() == ")":
            p.fail("unbalanced )")
        parts = ([] if anchored_start else [anything]) + ([body] if body else []) + \
            ([] if anchored_end else [anything])
        branches.append(" ".join(parts))
        if p.peek() != "|":
            break
        p.i += 1
    inner = branches[0] if len(branches) == 1 else " | ".join(f"({b})" if b else '""' for b in branches)
    return '"\\"" (' + (inner or '""') + ') "\\""'
