"""The reasoning budget's token machine (no model): counting starts at the opening
marker or at once for a prompt that opened reasoning, the closing marker ends it, a
spent budget forces the message and the closing marker, never inside a character."""

from __future__ import annotations

from pyllama.engine.reasoning_budget import BudgetState, ReasoningBudget

START, END, MSG = [1], [2, 3], [7, 8]


def run(budget: ReasoningBudget, sampled: list[int], pieces: dict[int, bytes] | None = None) -> list[int]:
    """The tokens a generation gives when the model would sample `sampled` in order."""
    st, out, it = BudgetState(budget), [], iter(sampled)
    while len(out) < 20:
        tok = st.forced_token()
        if tok is None:
            tok = next(it, None)
            if tok is None:
                break
        out.append(tok)
        st.accept(tok, (pieces or {}).get(tok, b"a"))
    return out


def test_counting_starts_at_the_opening_marker():
    b = ReasoningBudget(3, start=START, end=END, forced=MSG + END)
    assert run(b, [5, 5, 1, 5, 5, 5, 6, 6]) == [5, 5, 1, 5, 5, 5, 7, 8, 2, 3, 6, 6]


def test_forced_open_counts_from_the_first_token():
    b = ReasoningBudget(2, start=START, end=END, forced=END, forced_open=True)
    assert run(b, [5, 5, 5, 6]) == [5, 5, 2, 3, 5, 6]


def test_reasoning_that_ends_by_itself_is_left_alone():
    b = ReasoningBudget(4, start=START, end=END, forced=MSG + END, forced_open=True)
    assert run(b, [5, 2, 3, 6, 6, 6, 6, 6]) == [5, 2, 3, 6, 6, 6, 6, 6]


def test_zero_budget_ends_at_once():
    b = ReasoningBudget(0, start=START, end=END, forced=END, forced_open=True)
    assert run(b, [6]) == [2, 3, 6]
    b = ReasoningBudget(0, start=START, end=END, forced=END)
    assert run(b, [1, 6]) == [1, 2, 3, 6]


def test_no_opening_marker_no_budget():
    b = ReasoningBudget(1, start=START, end=END, forced=END)
    assert run(b, [5, 5, 5, 5]) == [5, 5, 5, 5]


def test_forcing_waits_for_a_whole_character():
    b = ReasoningBudget(1, start=START, end=END, forced=END, forced_open=True)
    pieces = {40: b"\xe2\x82", 41: b"\xac", 5: b"x"}  # a euro sign split over two tokens
    assert run(b, [40, 41, 5], pieces) == [40, 41, 2, 3, 5]
