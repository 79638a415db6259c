"""BPE pre-tokenizers: the word-splitting rules selected by `tokenizer.ggml.pre`.

Each pre-tokenizer is an ordered list of patterns, applied as llama.cpp applies them:
pattern k splits every piece produced by patterns 0..k-1; both the matches and the
text between matches become pieces. Patterns use the `regex` module's Unicode
classes (\\p{L}, \\p{N}, ...); `$` is written `\\Z` (end of the piece only).

An unknown `tokenizer.ggml.pre` value falls back to "default", as llama.cpp does,
with a warning naming the value (see Tokenizer.warnings).
"""

from __future__ import annotations

import regex

_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_UPPER_LOWER = r"((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"
_UPPER_LOWER2 = r"((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"
_TEKKEN = (r"[^\r\n\p{L}\p{N}]?" + _UPPER_LOWER + r"|[^\r\n\p{L}\p{N}]?" + _UPPER_LOWER2
           + r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (r"[^\r\n\p{L}\p{N}]?" + _UPPER_LOWER + _CONTRACTIONS + r"?|[^\r\n\p{L}\p{N}]?" + _UPPER_LOWER2
          + _CONTRACTIONS + r"?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# (escapes: canonical singletons that editors silently normalize)
_DEEPSEEK_LETTERS = (
    "A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ"
    "\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2"
    "\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943"
)
_DEEPSEEK3_MAIN = (r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"
                   r"| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

PATTERNS: dict[str, list[str]] = {
    "default": [r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"],
    "llama3": [_LLAMA3],
    "deepseek-llm": ["[\r\n]", r"\s?[" + _DEEPSEEK_LETTERS + "]+", r"\s?[!-/:-~！-／：-～‘-‟　-。]+", r"\s+\Z",
                     "[一-龥ࠀ-一가-퟿]+", r"\p{N}+"],
    "deepseek3": [r"\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", _DEEPSEEK3_MAIN],
    "deepseek-coder": ["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"],
    "falcon": [r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]"],
    "starcoder": [r"\p{N}", _GPT2],
    "gpt2": [_GPT2],
    "qwen2": [_QWEN2],
    "bloom": [r" ?[^(\s|.,!?…。，、।۔،)]+"],
    "viking": [r" ?[^(\s|.,!?…。，、।۔،)]+", r"\p{N}"],
    "tekken": [_TEKKEN],
    "chameleon": [r"<sentinel:[0-9]+>", r"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", r"([\t\n]|    |  )", r"\p{N}",
                  r"[\p{P}!-/:-@\[-`{-~]", _GPT2],
    "gpt4o": [_GPT4O],
    "superbpe": [r"\p{N}+", r"(?=(\d{3})+(?!\d))"],
    "bailingmoe": [r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                   r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"],
    "seed-coder": [_CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"],
}


class PreSpec:
    """How one `tokenizer.ggml.pre` value tokenizes: patterns and vocabulary flags."""

    def __init__(self, patterns: str, clean_spaces: bool = True, ignore_merges: bool = False,
                 add_bos: bool | None = None, add_sep: bool = False):
        self.patterns = patterns
        self.clean_spaces = clean_spaces
        self.ignore_merges = ignore_merges
        self.add_bos = add_bos
        self.add_sep = add_sep


def _specs() -> dict[str, PreSpec]:
    s: dict[str, PreSpec] = {"default": PreSpec("default")}
    for name in ("llama3", "llama-v3", "llama-bpe", "falcon3"):
        s[name] = PreSpec("llama3", ignore_merges=True, add_bos=True)
    s["deepseek-llm"] = PreSpec("deepseek-llm", clean_spaces=False)
    s["deepseek-coder"] = PreSpec("deepseek-coder", clean_spaces=False)
    s["deepseek-v3"] = PreSpec("deepseek3", clean_spaces=False)
    s["hunyuan-dense"] = PreSpec("deepseek3", clean_spaces=False)
    s["falcon"] = PreSpec("falcon")
    s["mpt"] = s["olmo"] = s["jais"] = PreSpec("gpt2")
    s["starcoder"] = s["refact"] = s["codeshell"] = s["exaone"] = s["minerva-7b"] = PreSpec("starcoder")
    for name in ("command-r", "smollm"):
        s[name] = PreSpec("starcoder", clean_spaces=False)
    for name in ("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                 "mellum", "exaone4"):
        s[name] = PreSpec("gpt2")
    for name in ("jina-v1-en", "jina-v2-code", "roberta-bpe"):
        s[name] = PreSpec("gpt2", add_sep=True)
    for name in ("trillion", "granite-docling"):
        s[name] = PreSpec("gpt2", clean_spaces=False)
    for name in ("qwen2", "deepseek-r1-qwen", "kormo", "hunyuan", "grok-2"):
        s[name] = PreSpec("qwen2", clean_spaces=False)
    s["stablelm2"] = s["megrez"] = PreSpec("qwen2")
    s["dbrx"] = s["smaug-bpe"] = s["chatglm-bpe"] = s["glm4"] = PreSpec("llama3")
    s["poro-chat"] = PreSpec("bloom", clean_spaces=False)
    s["bloom"] = s["gpt3-finnish"] = PreSpec("bloom")
    s["viking"] = PreSpec("viking", clean_spaces=False)
    s["tekken"] = PreSpec("tekken", clean_spaces=False, ignore_merges=True, add_bos=True)
    s["chameleon"] = PreSpec("chameleon", clean_spaces=False, add_bos=True)
    for name in ("gpt-4o", "llama4", "minimax-m2"):
        s[name] = PreSpec("gpt4o", clean_spaces=False)
    s["superbpe"] = PreSpec("superbpe", clean_spaces=False)
    for name in ("bailingmoe", "bailingmoe2", "llada-moe"):
        s[name] = PreSpec("bailingmoe", clean_spaces=False)
    s["seed-coder"] = PreSpec("seed-coder", clean_spaces=False)
    return s


PRE_SPECS = _specs()
_compiled: dict[str, list["Splitter"]] = {}


class Splitter:
    """One pattern as a splitter. Patterns that cannot match the empty string split
    with one `regex.split` call on a capturing copy (fast, in C); the others (lookahead
    splitters) walk their matches."""

    def __init__(self, pattern: str):
        self.pattern = regex.compile(pattern)
        self.can_be_empty = self.pattern.fullmatch("") is not None or pattern.startswith("(?=")
        if not self.can_be_empty:
            self.capturing = regex.compile("(" + _non_capturing(pattern) + ")")

    def split(self, piece: str, out: list[str]) -> None:
        if not self.can_be_empty:
            out.extend(p for p in self.capturing.split(piece) if p)
            return
        pos = 0
        for m in self.pattern.finditer(piece):
            a, b = m.span()
            if a > pos:
                out.append(piece[pos:a])
            if b > a:
                out.append(piece[a:b])
                pos = b
            elif a > pos:
                pos = a
        if pos < len(piece):
            out.append(piece[pos:])


def _non_capturing(pattern: str) -> str:
    """pattern with its capturing groups made non-capturing (outside character classes)."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            out.append(c)
            if pattern[i + 1:i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1:i + 2] == "]":  # a leading ] is a literal
                out.append("]")
                i += 1
            i += 1
            continue
        elif c == "(" and pattern[i + 1:i + 2] != "?":
            out.append("(?:")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def compiled(patterns: str) -> list[Splitter]:
    if patterns not in _compiled:
        _compiled[patterns] = [Splitter(p) for p in PATTERNS[patterns]]
    return _compiled[patterns]


def split_words(text: str, splitters: list[Splitter]) -> list[str]:
    """Pieces of `text` after applying each pattern in turn (matches and the gaps between)."""
    pieces = [text]
    for sp in splitters:
        out: list[str] = []
        for piece in pieces:
            sp.split(piece, out)
        pieces = out
    return pieces
