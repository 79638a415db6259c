"""A token budget for reasoning (llama-server's `--reasoning-budget N`, a request's
`reasoning_budget_tokens`): once the model has thought for N tokens, the next tokens
are forced to the budget message (if any) and the format's end-of-thinking marker, so
the model goes on to its answer.

Reasoning starts at the format's opening marker (as tokens, seen in the output) or at
once when the prompt opened it; it ends by itself at the closing marker. A budget runs
out only between whole characters: a token that leaves a UTF-8 character unfinished
is followed by the next sampled one before forcing starts. The forced tokens pass
through the sampler's history like sampled ones (penalties see them)."""

from __future__ import annotations

from dataclasses import dataclass, field

IDLE, COUNTING, FORCING, DONE = "idle", "counting", "forcing", "done"


@dataclass(frozen=True)
class ReasoningBudget:
    """What a task's budget needs: the markers and forced text as tokens."""

    tokens: int                                     # >= 0
    start: list[int] = field(default_factory=list)  # the opening marker (empty: only a forced-open prompt counts)
    end: list[int] = field(default_factory=list)    # the closing marker
    forced: list[int] = field(default_factory=list)  # budget message + closing marker
    forced_open: bool = False                       # the prompt ends inside reasoning


class BudgetState:
    """Where one generation stands against its budget."""

    def __init__(self, budget: ReasoningBudget):
        self.budget = budget
        self.state = COUNTING if budget.forced_open else IDLE
        self.remaining = budget.tokens
        self.recent: list[int] = []  # the last tokens, to find a marker
        self.n_forced = 0
        self.pending_utf8 = 0        # continuation bytes the last character still needs
        if self.state == COUNTING and self.remaining <= 0:
            self.state = FORCING if budget.forced else DONE

    def forced_token(self) -> int | None:
        """The token the sampler must give next, or None to sample freely."""
        if self.state == FORCING and self.pending_utf8 == 0:
            return self.budget.forced[self.n_forced]
        return None

    def accept(self, tok: int, piece: bytes) -> None:
        """Record the token given (sampled or forced) and its bytes."""
        self.pending_utf8 = _still_needed(self.pending_utf8, piece)
        if self.state == DONE:
            return
        if self.state == FORCING and self.pending_utf8 == 0 and self.n_forced < len(self.budget.forced) \
                and tok == self.budget.forced[self.n_forced]:
            self.n_forced += 1
            if self.n_forced == len(self.budget.forced):
                self.state = DONE
            return
        marker = self.budget.start if self.state == IDLE else self.budget.end
        self.recent = (self.recent + [tok])[-max(len(self.budget.start), len(self.budget.end), 1):]
        seen = bool(marker) and self.recent[-len(marker):] == marker
        if self.state == IDLE:
            if seen:
                self.state, self.recent = COUNTING, []
                self._check_spent()
            return
        if seen:  # reasoning closed by itself
            self.state = DONE
            return
        if self.state == COUNTING:
            self.remaining -= 1
            self._check_spent()

    def _check_spent(self) -> None:
        if self.remaining <= 0:
            self.state = FORCING if self.budget.forced else DONE


def _still_needed(pending: int, piece: bytes) -> int:
    """Continuation bytes still owed after `piece` (0: the text ends on a whole character)."""
    for b in piece:
        if pending and 0x80 <= b < 0xC0:
            pending -= 1
        elif b >= 0xF0:
            pending = 3
        elif b >= 0xE0:
            pending = 2
        elif b >= 0xC0:
            pending = 1
        else:
            pending = 0
    return pending
