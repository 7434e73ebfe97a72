"""Reasoning budgets as streaming state machines: the thinking budget (tokens or time, grace, minimum, wrap-up)
and the answer budget. What the user types is parsed in config.py (`parse_budget`)."""

from __future__ import annotations

from dataclasses import dataclass

WRAP_UP_TEXT = "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking directly now.\n"
"""Qwen's own wrap-up sentence; the engine injects it, then the closing think tag."""
MIN_THINKING_TEXT = "\nWait"
"""s1-style continuation injected in place of a `</think>` that came before the minimum."""
FORCED_ANSWER_TEXT = "\n\n**Final Answer** \\boxed{"
"""Injected when the answer budget runs out on a math problem with no boxed answer yet."""
_SENTENCE_END = ".!?。！？"


def ends_sentence(chunk: str) -> bool:
    """Whether a chunk of thinking text closes a sentence or a line (a good place to cut).

    A dot after a digit (`3.`, `1.`) is a number or a list marker, not a sentence end.
    """
    if "\n" in chunk:
        return True
    stripped = chunk.rstrip()
    if not stripped or stripped[-1] not in _SENTENCE_END:
        return False
    return not (len(stripped) >= 2 and stripped[-1] == "." and stripped[-2].isdigit())


@dataclass(frozen=True)
class BudgetStep:
    """What the engine must do after a thinking token: report `notes`, and inject the wrap-up when `wrap_up`."""

    notes: tuple[str, ...] = ()
    wrap_up: bool = False


_NOTHING = BudgetStep()


class BudgetController:
    """The per-turn thinking budget as a pure state machine (no clock, no I/O).

    The engine calls `step(thinking_tokens, text)` after each thinking token. At the cap (or after a
    wrap-up request) it waits up to `grace` tokens for the sentence or line to end, then says `wrap_up`.
    A time budget becomes tokens through `set_rate` (the measured decode rate). `extend` adds tokens
    and cancels a pending wrap-up; a second think block after the wrap-up hits the cap again at once.
    """

    def __init__(
        self,
        max_tokens: int | None,
        *,
        seconds: float | None = None,
        rate_tok_s: float | None = None,
        grace: int = 48,
        min_tokens: int = 0,
        warn_fraction: float = 0.9,
        max_waits: int = 4,
    ) -> None:
        self._tokens = max_tokens
        self._seconds = seconds
        self._rate: float | None = None
        self._extra = 0
        self.grace = max(0, grace)
        self.min_tokens = max(0, min_tokens)
        self.max_waits = max_waits
        self.waits = 0
        """`</think>`s replaced so far; after `max_waits` the model may close (it insists)."""
        self.warn_fraction = warn_fraction
        self.warned = False
        self.in_grace = False
        self.grace_used = 0
        self.wrapped = False
        self.hit = False
        """The cap itself (not a user request) forced the wrap-up."""
        self._cap: int | None = max_tokens
        if seconds is not None and rate_tok_s:
            self.set_rate(rate_tok_s)

    @property
    def budget(self) -> int | None:
        """The current cap in tokens (None: unlimited, or a time budget whose rate is not known yet)."""
        return self._cap

    def _recompute(self) -> None:
        caps = [] if self._tokens is None else [self._tokens]
        if self._seconds is not None and self._rate is not None:
            caps.append(int(self._seconds * self._rate))
        self._cap = min(caps) + self._extra if caps else None

    def set_rate(self, tok_s: float) -> None:
        """Convert a time budget with the measured decode rate (ignored for token budgets)."""
        if self._seconds is not None and tok_s > 0:
            self._rate = tok_s
            self._recompute()

    def extend(self, tokens: int) -> str | None:
        """Give `tokens` more; cancels a pending wrap-up. Returns the `extended` note (None when nothing changed)."""
        if tokens <= 0 or self.wrapped:
            return None
        if self.budget is None and not self.in_grace:
            return None
        if self.budget is not None:
            self._extra += tokens
            self._recompute()
        self.in_grace = False
        self.hit = False
        self.grace_used = 0
        self.warned = False
        return "extended"

    def request_wrap_up(self, *, forced: bool = False) -> None:
        """Stop at the next sentence end (a user's wrap-up-now, or the engine when context runs short)."""
        if self.wrapped or self.in_grace:
            self.hit = self.hit or forced
            return
        self.in_grace = True
        self.grace_used = 0
        self.hit = self.hit or forced

    def close_allowed(self, thinking_tokens: int) -> bool:
        """Whether a `</think>` from the model may stand (False before the minimum: replace it with `Wait`,
        and call `waited`)."""
        return (
            self.wrapped
            or self.in_grace
            or thinking_tokens >= self.min_tokens
            or self.waits >= self.max_waits
        )

    def waited(self) -> None:
        """A `</think>` (or an end of turn) was replaced with MIN_THINKING_TEXT."""
        self.waits += 1

    def reopen(self) -> None:
        """A new think block began after the wrap-up; the same per-turn budget applies."""
        self.wrapped = False
        self.grace_used = 0

    def step(self, thinking_tokens: int, text: str) -> BudgetStep:
        """After one thinking token whose text is `text`."""
        if self.wrapped:
            return _NOTHING
        budget = self.budget
        notes: tuple[str, ...] = ()
        if budget is not None and not self.in_grace:
            if thinking_tokens >= budget:
                self.in_grace = True
                self.grace_used = 0
                self.hit = True
            elif not self.warned and budget > 0 and thinking_tokens >= self.warn_fraction * budget:
                self.warned = True
                notes = ("warning",)
        if not self.in_grace:
            return BudgetStep(notes) if notes else _NOTHING
        if ends_sentence(text) or self.grace_used >= self.grace:
            self.wrapped = True
            self.in_grace = False
            return BudgetStep((*notes, "wrap_up"), wrap_up=True)
        self.grace_used += 1
        return BudgetStep(notes) if notes else _NOTHING

    def wrap_up_now(self) -> BudgetStep:
        """Wrap up without waiting for a sentence end (e.g. the model stopped while thinking)."""
        self.wrapped = True
        self.in_grace = False
        return BudgetStep(("wrap_up",), wrap_up=True)


class AnswerBudget:
    """Bounds the answer; on a math turn with no `\\boxed{` when it runs out, forces one and tracks its braces.

    `step(answer_tokens, text)` returns `"continue"`, `"stop"` (budget spent), `"force_boxed"` (inject
    FORCED_ANSWER_TEXT and keep decoding), or, while the forced box is open, `"close_box"` when it is
    time to inject a closing brace, and `"stop"` once the braces balance.
    """

    def __init__(self, max_tokens: int, *, force_boxed: bool = False, boxed_tokens: int = 48) -> None:
        self.max_tokens = max(1, max_tokens)
        self.force_boxed = force_boxed
        self.boxed_tokens = boxed_tokens
        self.has_boxed = False
        self.forcing = False
        self._depth = 0
        self._forced_used = 0
        self._tail = ""

    def forced(self) -> None:
        """FORCED_ANSWER_TEXT was injected: its `{` is open."""
        self.forcing = True
        self.has_boxed = True
        self._depth = 1

    def step(self, answer_tokens: int, text: str) -> str:
        if self.forcing:
            for ch in text:
                if ch == "{":
                    self._depth += 1
                elif ch == "}":
                    self._depth -= 1
                    if self._depth <= 0:
                        return "stop"
            self._forced_used += 1
            return "close_box" if self._forced_used >= self.boxed_tokens else "continue"
        if not self.has_boxed and text:
            window = self._tail + text
            if "\\boxed{" in window:
                self.has_boxed = True
            self._tail = window[-6:]
        if answer_tokens < self.max_tokens:
            return "continue"
        if self.force_boxed and not self.has_boxed:
            return "force_boxed"
        return "stop"
