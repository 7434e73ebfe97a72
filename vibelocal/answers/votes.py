"""Self-consistency voting: K final answers grouped by mathematical equivalence; the largest group wins."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Equivalence = Callable[[str, str], bool]

DEFAULT_CHECK_TIMEOUT_S = 2.0
"""Each pairwise equivalence check gives up (as "not equivalent") after this long."""


@dataclass(frozen=True)
class VoteGroup:
    """Samples whose final answers are equivalent; `answer` is the first one seen."""

    answer: str
    members: list[int] = field(default_factory=list)
    """Sample indices (0-based), in order."""

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class VoteResult:
    """Groups largest first (ties: the group seen first), and the samples that gave no final answer."""

    groups: list[VoteGroup]
    total: int
    unanswered: list[int] = field(default_factory=list)

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
        }


def math_equivalence(timeout_s: float = DEFAULT_CHECK_TIMEOUT_S) -> Equivalence:
    """Equivalence by `mathcheck` (math-verify + sympy): `1/2`, `0.5` and `\\frac12` are one answer."""
    from vibelocal.answers import mathcheck

    def equivalent(a: str, b: str) -> bool:
        return mathcheck.check(a, b, timeout_s=timeout_s).equivalent

    return equivalent


def text_equivalence(a: str, b: str) -> bool:
    """Equality up to whitespace (for code, where mathematical equivalence means nothing)."""
    return re.sub(r"\s+", " ", a).strip() == re.sub(r"\s+", " ", b).strip()


def group_answers(answers: Sequence[str | None], equivalent: Equivalence | None = None) -> VoteResult:
    """Group final answers (None: a sample without one); each joins the first group it is equivalent to."""
    same = equivalent or math_equivalence()
    groups: list[VoteGroup] = []
    unanswered: list[int] = []
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            unanswered.append(index)
            continue
        for group in groups:
            if text_equivalence(answer, group.answer) or _safe(same, answer, group.answer):
                group.members.append(index)
                break
        else:
            groups.append(VoteGroup(answer, [index]))
    order = sorted(range(len(groups)), key=lambda g: (-groups[g].size, g))
    return VoteResult([groups[g] for g in order], total=len(answers), unanswered=unanswered)


def _safe(same: Equivalence, a: str, b: str) -> bool:
    try:
        return bool(same(a, b))
    except Exception:  # an unreadable answer is simply not equivalent to anything else
        return False


def vote_seeds(base_seed: int, k: int) -> list[int]:
    """K distinct seeds derived from one: base, base+1, … (kept within 32 bits)."""
    return [(base_seed + i) % (2**32) for i in range(k)]
