"""Numbers within bounds, as GBNF: integers in [lo, hi] written without leading
zeros, and decimals whose integer part and fraction digits are compared against
the bounds digit by digit, so every string the grammar allows is in range."""

from __future__ import annotations

from decimal import Decimal

MAX_DIGITS = 16  # llama.cpp's primitives allow 16 integer digits; an open range stops there too


def _digit_class(a: int, b: int) -> str:
    return f"[{a}]" if a == b else f"[{a}-{b}]"


def _any_digits(n: int) -> str:
    return "" if n == 0 else ("[0-9]" if n == 1 else f"[0-9]{{{n}}}")


def _same_length(lo: str, hi: str) -> str:
    """Digit strings of len(lo) == len(hi) between lo and hi (leading zeros allowed)."""
    if not lo:
        return ""
    if lo == hi:
        return f'"{lo}"'
    n = len(lo) - 1
    a, b = int(lo[0]), int(hi[0])
    if a == b:
        return f'"{lo[0]}" ({_same_length(lo[1:], hi[1:])})' if n else _digit_class(a, b)
    if n == 0:
        return _digit_class(a, b)
    alts = []
    low_full, high_full = lo[1:] == "0" * n, hi[1:] == "9" * n
    first = a if low_full else a + 1
    last = b if high_full else b - 1
    if not low_full:
        alts.append(f'"{lo[0]}" ({_same_length(lo[1:], "9" * n)})')
    if first <= last:
        alts.append(f"{_digit_class(first, last)} {_any_digits(n)}")
    if not high_full:
        alts.append(f'"{hi[0]}" ({_same_length("0" * n, hi[1:])})')
    return " | ".join(alts)


def int_range(lo: int, hi: int | None) -> str:
    """Non-negative integers lo..hi (hi None: up to MAX_DIGITS digits), no leading zeros."""
    if hi is None:
        hi = max(10 ** MAX_DIGITS - 1, lo)
    if lo > hi:
        raise ValueError("empty range")
    alts = []
    full_from = None  # consecutive lengths whose whole range is allowed share one alternative
    for n in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 0 if n == 1 else 10 ** (n - 1))
        b = min(hi, 10 ** n - 1)
        if n > 1 and a == 10 ** (n - 1) and b == 10 ** n - 1:
            full_from = n if full_from is None else full_from
            full_to = n
            continue
        if full_from is not None:
            alts.append(_full_lengths(full_from, full_to))
            full_from = None
        if a <= b:
            alts.append(_same_length(str(a), str(b)))
    if full_from is not None:
        alts.append(_full_lengths(full_from, full_to))
    return " | ".join(f"({a})" for a in alts) if len(alts) > 1 else alts[0]


def _full_lengths(n1: int, n2: int) -> str:
    return f"[1-9] [0-9]{{{n1 - 1}}}" if n1 == n2 else f"[1-9] [0-9]{{{n1 - 1},{n2 - 1}}}"


def integer_grammar(lo: int | None, hi: int | None) -> str:
    """Integers in [lo, hi]; None is unbounded. Raises ValueError when the range is empty."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError("empty range")
    alts = []
    if hi is None or hi >= 0:
        alts.append(int_range(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo < 0:
        top = -lo if lo is not None else None
        bottom = max(1, -hi) if hi is not None else 1
        alts.append(f'"-" ({int_range(bottom, top)})')
    return " | ".join(f"({a})" for a in alts) if len(alts) > 1 else alts[0]


# -- decimals ---------------------------------------------------------------------------------------
# A fraction's digit string f is compared with a bound's fraction digits as if padded with zeros.
# A lower constraint is None (free), NONZERO (f must not be all zeros) or a digit string; an upper
# one is None, ZEROS (f must be all zeros) or a digit string. Strings are stripped of trailing zeros.
# A fraction gets at most SIGNIFICANT minus the integer part's digits (so a double still tells it
# from a bound it must differ from: 0.5000000000000000001 would parse as 0.5).
NONZERO, ZEROS = object(), object()  # sentinels, never digit strings
SIGNIFICANT = 15


def _room(int_part: int) -> int:
    return max(1, SIGNIFICANT - len(str(int_part)))


def _lower_after(rest: str, inclusive: bool):
    rest = rest.rstrip("0")
    return rest if rest else (None if inclusive else NONZERO)


def _upper_after(rest: str, inclusive: bool):
    rest = rest.rstrip("0")
    return rest if rest else (ZEROS if inclusive else False)  # False: nothing can follow


def _fraction(low, high, li: bool, hi: bool, room: int) -> tuple[bool, list[str]]:
    """(may f be empty, alternatives for a non-empty f of at most `room` digits) under the constraints."""
    eps = low is None  # an empty f is all zeros: below any digit-string lower bound, within any upper one
    if room <= 0 or (low is None and high is ZEROS) or (low is NONZERO and high is ZEROS):
        return eps, []
    if low is None and high is None:
        return True, [f"[0-9]{{1,{room}}}" if room > 1 else "[0-9]"]
    if low is NONZERO and high is None:
        return False, [f"[0-9]{{0,{room - 1}}} [1-9]" if room > 1 else "[1-9]"]
    groups: dict[tuple, list[int]] = {}
    for c in range(10):
        if isinstance(low, str):
            d = int(low[0])
            if c < d:
                continue
            nlow = None if c > d else _lower_after(low[1:], li)
        elif low is NONZERO:
            nlow = None if c > 0 else NONZERO
        else:
            nlow = None
        if isinstance(high, str):
            d = int(high[0])
            if c > d:
                continue
            nhigh = None if c < d else _upper_after(high[1:], hi)
            if nhigh is False:
                continue
        elif high is ZEROS:
            if c > 0:
                continue
            nhigh = ZEROS
        else:
            nhigh = None
        groups.setdefault((nlow, nhigh), []).append(c)
    alts = []
    for (nlow, nhigh), digits in groups.items():
        cls = _digit_class(digits[0], digits[-1]) if digits == list(range(digits[0], digits[-1] + 1)) \
            else "[" + "".join(map(str, digits)) + "]"
        empty_ok, rest = _fraction(nlow, nhigh, li, hi, room - 1)
        if empty_ok:
            alts.append(cls if not rest else f"{cls} ({' | '.join(rest)})?")
        elif rest:
            alts.append(f"{cls} ({' | '.join(rest)})")
    return eps, alts


def _with_fraction(int_part: str, low, high, li: bool, hi: bool, room: int) -> str | None:
    empty_ok, alts = _fraction(low, high, li, hi, room)
    if not alts:
        return int_part if empty_ok else None
    frac = f'"." ({" | ".join(alts)})'
    return f"{int_part} ({frac})?" if empty_ok else f"{int_part} {frac}"


def _split(x: Decimal) -> tuple[int, str]:
    s = format(x, "f")
    whole, _, frac = s.partition(".")
    return int(whole), frac.rstrip("0")


def _magnitude(a: Decimal, a_incl: bool, b: Decimal | None, b_incl: bool) -> list[str]:
    """Non-negative decimals m with a <(=) m <(=) b, without an exponent."""
    ai, af = _split(a)
    low = _lower_after(af, a_incl)
    if b is None:
        alts = [_with_fraction(f'"{ai}"', low, None, a_incl, True, _room(ai))]
        if ai < 10 ** MAX_DIGITS - 1:  # no bound above: any fraction stays in range
            alts.append(_with_fraction(f"({int_range(ai + 1, None)})", None, None, True, True, SIGNIFICANT))
        return [x for x in alts if x]
    bi, bf = _split(b)
    high = _upper_after(bf, b_incl)
    if ai == bi:
        if high is False:
            return []
        one = _with_fraction(f'"{ai}"', low, high, a_incl, b_incl, _room(ai))
        return [one] if one else []
    alts = [_with_fraction(f'"{ai}"', low, None, a_incl, True, _room(ai))]
    if ai + 1 <= bi - 1:
        alts.append(_with_fraction(f"({int_range(ai + 1, bi - 1)})", None, None, True, True, _room(bi - 1)))
    if high is not False:
        alts.append(_with_fraction(f'"{bi}"', None, high, True, b_incl, _room(bi)))
    return [x for x in alts if x]


def number_grammar(lo: Decimal | None, lo_incl: bool, hi: Decimal | None, hi_incl: bool) -> str:
    """Decimals in the interval (None: unbounded on that side). Raises ValueError when empty."""
    alts = []
    if hi is None or hi > 0 or (hi == 0 and hi_incl):
        if lo is None or lo < 0:
            alts += _magnitude(Decimal(0), True, hi, hi_incl)
        else:
            alts += _magnitude(lo, lo_incl, hi, hi_incl)
    if lo is None or lo < 0:
        # -m with m in (max(0, -hi), -lo): never "-0"
        if hi is None or hi >= 0:
            neg = _magnitude(Decimal(0), False, -lo if lo is not None else None, lo_incl)
        else:
            neg = _magnitude(-hi, hi_incl, -lo if lo is not None else None, lo_incl)
        alts += [f'"-" ({m})' for m in neg]
    if not alts:
        raise ValueError("empty range")
    return " | ".join(f"({a})" for a in alts)
