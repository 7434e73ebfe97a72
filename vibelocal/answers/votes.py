"""Self-consistency voting: K final answers partitioned by mathematical equivalence; the largest group wins.

The groups are a partition that does not depend on the order of the samples: identical answers (up to spaces)
are one answer, and the distinct answers are grouped in a fixed order (sorted by their canonical text), each
joining the first group whose first member it is equivalent to. For votes a percent is read as its value
(`50%` is 1/2, never also 50), so one answer cannot glue two different values into one group.

A vote may stop early: once the leading group is larger than the runner-up plus every sample still to come,
no outcome of those samples can change the winner, so they are cut (`VoteTally`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Equivalence = Callable[[str, str], bool]

CUT = "cut"
"""The stop reason of a sample an early-stopped vote no longer needed (cancelled running, or never started)."""

DEFAULT_CHECK_TIMEOUT_S = 2.0
"""Each pairwise equivalence check gives up (as "not equivalent") after this long."""


@dataclass(frozen=True)
class VoteGroup:
    """Samples whose final answers are equivalent; `answer` is the one given by the earliest of them."""

    answer: str
    members: list[int] = field(default_factory=list)
    """Sample indices (0-based), in order."""

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class VoteResult:
    """Groups largest first (ties: the group with the earliest sample), and the samples with no final answer."""

    groups: list[VoteGroup]
    total: int
    """Samples judged: every sample but the cut ones."""
    unanswered: list[int] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)
    """Samples stopped (or never started) because the winner could no longer be overtaken."""

    @property
    def winner(self) -> VoteGroup | None:
        return self.groups[0] if self.groups else None

    @property
    def agreement(self) -> str:
        """`3/5`: the winning group's size over all samples (unanswered ones included)."""
        return f"{self.winner.size if self.winner else 0}/{self.total}"

    @property
    def ratio(self) -> float:
        return (self.winner.size / self.total) if self.winner and self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.winner.answer if self.winner else None,
            "agreement": self.agreement,
            "votes": self.winner.size if self.winner else 0,
            "total": self.total,
            "ratio": round(self.ratio, 4),
            "groups": [{"answer": g.answer, "samples": g.members} for g in self.groups],
            "unanswered": self.unanswered,
            "cut": len(self.cut),
        }


def vote_form(answer: str) -> str:
    """An answer as votes compare it: a percent becomes the fraction it is (`50%` -> `\\frac{50}{100}`)."""
    from vibelocal.answers.normalize import normalize

    norm = normalize(answer)
    return rf"\frac{{{norm.text}}}{{100}}" if norm.percent and not norm.choice else answer


def math_equivalence(timeout_s: float = DEFAULT_CHECK_TIMEOUT_S) -> Equivalence:
    """Equivalence by `mathcheck` (exact, math-verify + sympy): `1/2`, `0.5`, `50%` and `\\frac12` are one answer."""
    from vibelocal.answers import mathcheck

    def equivalent(a: str, b: str) -> bool:
        return mathcheck.check(vote_form(a), vote_form(b), timeout_s=timeout_s).equivalent

    return equivalent


def text_equivalence(a: str, b: str) -> bool:
    """Equality up to whitespace (for code, where mathematical equivalence means nothing)."""
    return _spaces(a) == _spaces(b)


def _spaces(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def group_answers(
    answers: Sequence[str | None], equivalent: Equivalence | None = None, *, cut: Sequence[int] = ()
) -> VoteResult:
    """Partition final answers (None: a sample without one) into groups of equivalent answers, order-independently.
    The samples in `cut` were stopped early: they count neither as answered nor as unanswered."""
    same = equivalent or math_equivalence()
    unanswered: list[int] = []
    skipped = set(cut)
    samples: dict[str, list[int]] = {}  # each distinct answer (up to spaces) -> the samples that gave it
    for index, answer in enumerate(answers):
        if index in skipped:
            continue
        if answer is None or not answer.strip():
            unanswered.append(index)
        else:
            samples.setdefault(_spaces(answer), []).append(index)
    blocks: list[list[str]] = []  # distinct answers, grouped; each block's first answer is its representative
    for text in sorted(samples, key=lambda t: (len(t), t)):
        for block in blocks:
            if _safe(same, text, block[0]):
                block.append(text)
                break
        else:
            blocks.append([text])
    groups = []
    for block in blocks:
        members = sorted(i for text in block for i in samples[text])
        groups.append(VoteGroup(str(answers[members[0]]), members))
    groups.sort(key=lambda g: (-g.size, g.members[0]))
    return VoteResult(groups, total=len(answers) - len(skipped), unanswered=unanswered, cut=sorted(skipped))


def settled(result: VoteResult, remaining: int) -> bool:
    """True when `remaining` more samples cannot overtake (nor tie) the winner, even if all of them joined the
    runner-up; False when none remain (there is nothing to cut)."""
    if remaining <= 0 or result.winner is None:
        return False
    runner_up = result.groups[1].size if len(result.groups) > 1 else 0
    return result.winner.size > runner_up + remaining


class VoteTally:
    """The final answers of a K-sample vote as they arrive (in any order); `add` says when the vote is settled.

    Pure bookkeeping: the caller cancels the samples still running and starts no more once it is."""

    def __init__(self, k: int, equivalent: Equivalence) -> None:
        self.k = k
        self._equivalent = equivalent
        self._finals: dict[int, str | None] = {}

    def add(self, index: int, final: str | None) -> bool:
        """Record sample `index`'s final answer (None: it gave none); True once the rest cannot change the winner."""
        self._finals[index] = final
        pending = [i for i in range(self.k) if i not in self._finals]
        answers = [self._finals.get(i) for i in range(self.k)]
        return settled(group_answers(answers, self._equivalent, cut=pending), len(pending))


def _safe(same: Equivalence, a: str, b: str) -> bool:
    try:
        return bool(same(a, b))
    except Exception:  # an unreadable answer is simply not equivalent to anything else
        return False


def vote_seeds(base_seed: int, k: int) -> list[int]:
    """K distinct seeds derived from one: base, base+1, … wrapping within 0..4,294,967,294 (llama.cpp reads
    4,294,967,295 as "pick a random seed", which would make a sample irreproducible)."""
    return [(base_seed + i) % (2**32 - 1) for i in range(k)]
