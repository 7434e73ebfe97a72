"""Draft tokens for speculative decoding: prompt-lookup n-grams, and a gate that stops drafting when it loses.

Pure Python over token ids (no model): the speculative backend (engine/llama/speculative.py) feeds every token
that enters the KV cache to an `NgramDrafter` and asks it for the tokens that followed the latest earlier
occurrence of the text's last n-gram. Reasoning traces restate the problem, copy equations and repeat their own
sentences, so such guesses are often right, and a right guess is verified in the same batch as the real token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_NGRAM = 3
"""Longest n-gram matched (the longest that matches wins: it predicts best)."""
MIN_NGRAM = 2
"""Shortest n-gram matched: a single repeated token predicts too little to pay for its batch."""
MAX_DRAFT = 8
"""Most tokens drafted at once (llama.cpp's prompt-lookup default is in the same range)."""
START_DRAFT = 4
"""Tokens drafted at first and after a pause: a probe that costs little where drafts will not pay."""


class NgramDrafter:
    """The history of one sequence (prompt and generated tokens) with an index of its n-grams.

    For each n in MIN..MAX it keeps, per n-gram, the position where it last ended; `append` looks the new
    suffix up before indexing it, so each token costs a few dict operations and a draft is a slice.
    """

    def __init__(
        self,
        tokens: Iterable[int] = (),
        *,
        min_ngram: int = MIN_NGRAM,
        max_ngram: int = MAX_NGRAM,
    ) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"n-gram sizes must satisfy 1 <= min <= max, not {min_ngram}..{max_ngram}")
        self.sizes = range(max_ngram, min_ngram - 1, -1)
        self.history: list[int] = []
        self._last: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.sizes}
        self._match: dict[int, int] = {}
        """n -> the end position of the latest earlier occurrence of the current n-gram suffix."""
        self.extend(tokens)

    def __len__(self) -> int:
        return len(self.history)

    def append(self, token: int) -> None:
        history = self.history
        history.append(token)
        end = len(history) - 1
        match = self._match
        for n in self.sizes:
            if end + 1 < n:
                match.pop(n, None)
                continue
            key = tuple(history[end + 1 - n :])
            index = self._last[n]
            prev = index.get(key)
            if prev is None:
                match.pop(n, None)
            else:
                match[n] = prev
            index[key] = end

    def extend(self, tokens: Iterable[int]) -> None:
        for token in tokens:
            self.append(token)

    def truncate(self, length: int) -> None:
        """Forget everything from position `length` on (the KV cache was rolled back); rebuilds the index."""
        if length >= len(self.history):
            return
        kept = self.history[:length]
        self.history = []
        self._last = {n: {} for n in self.sizes}
        self._match = {}
        self.extend(kept)

    def draft(self, limit: int = MAX_DRAFT) -> list[int]:
        """Up to `limit` tokens that followed the latest earlier occurrence of the longest matching suffix."""
        if limit <= 0:
            return []
        match = self._match
        for n in self.sizes:
            prev = match.get(n)
            if prev is not None:
                return self.history[prev + 1 : prev + 1 + limit]
        return []


@dataclass
class DraftGate:
    """Whether to draft, and how many tokens: drafting goes on only while it is faster than plain decoding.

    A verified batch costs more than one token's decode (how much more depends on the model and the machine:
    little on a GPU or a memory-bound CPU, about as much as its tokens decoded one by one on a compute-bound
    one), so the gate measures both: the seconds of a one-token decode, and the seconds per produced token of
    the draft batches (1 + accepted tokens each). After `window` batches that were not faster, drafting pauses
    for `pause` tokens, twice as long after each failed retry (up to `max_pause`); a trace may turn repetitive
    later on, and the machine's load changes. The draft length grows while drafts are accepted and shrinks to
    what was accepted (plus one) after a rejection, so a rejected guess costs few batch slots.
    """

    max_length: int = MAX_DRAFT
    window: int = 3
    pause: int = 64
    max_pause: int = 4096
    length: int = START_DRAFT
    single_s: float | None = None
    """Smoothed seconds of a one-token decode."""
    spec_s: float | None = None
    """Smoothed seconds per produced token of the draft batches since the last decision."""
    batches: int = 0
    paused_for: int = 0
    next_pause: int = 0

    def __post_init__(self) -> None:
        self.length = min(self.length, self.max_length)
        self.next_pause = self.next_pause or self.pause

    @property
    def open(self) -> bool:
        return self.paused_for == 0 and self.max_length > 0

    def decoded_one(self, seconds: float) -> None:
        """A one-token decode (no draft) took `seconds`."""
        self.single_s = seconds if self.single_s is None else 0.9 * self.single_s + 0.1 * seconds
        if self.paused_for:
            self.paused_for -= 1

    def record(self, drafted: int, accepted: int, seconds: float) -> None:
        """A batch of one token and `drafted` drafts took `seconds`; `accepted` drafts were kept."""
        self.length = min(self.max_length, self.length + 2) if accepted == drafted else max(1, accepted + 1)
        per_token = seconds / (1 + accepted)
        self.spec_s = per_token if self.spec_s is None else 0.7 * self.spec_s + 0.3 * per_token
        self.batches += 1
        if self.batches < self.window or self.single_s is None:
            return
        if self.spec_s >= self.single_s:  # not faster: pause, and back off further if it fails again
            self.paused_for = self.next_pause
            self.next_pause = min(2 * self.next_pause, self.max_pause)
            self.length = min(START_DRAFT, self.max_length)
        else:
            self.next_pause = self.pause
        self.batches = 0
        self.spec_s = None
