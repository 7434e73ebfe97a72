"""An in-memory `turn.TokenBackend` for the turn loop's unit tests: a made-up vocabulary and a scripted model."""

from __future__ import annotations

from vibelocal.engine.scripted import pieces

STOP = 0
"""The end-of-turn token."""


class FakeBackend:
    """One token per `pieces()` chunk (so tags split over tokens, as in real vocabularies), id 0 ends the turn.

    The 'model' reads what was injected and switches its script, as a real one would: `think` from the start,
    `answer` after an injected `</think>`, `boxed` after an injected `\\boxed{`, `wait` after an injected
    `Wait` (each time from its start); a script that runs out ends the turn. The KV cache is a list of ids; `evaluated` counts every token
    evaluated after the prompt, whoever asked, so tests can check the loop's own counts against it.
    """

    def __init__(
        self,
        think: str = "",
        answer: str = "",
        boxed: str = "",
        wait: str = "",
        *,
        n_ctx: int = 4096,
        prompt_tokens: int = 8,
    ) -> None:
        self.vocab: list[str] = ["<|im_end|>"]
        self._ids: dict[str, int] = {}
        self.n_ctx = n_ctx
        self.cache: list[int] = self.tokenize("word " * prompt_tokens)[:prompt_tokens]
        self.prompt_tokens = len(self.cache)
        self.scripts = {"think": think, "answer": answer, "boxed": boxed, "wait": wait}
        self._script = self.tokenize(think)
        self.phase = "think"
        self._pos = 0
        self._last: int | None = None
        self.evaluated = 0
        self.injected: list[str] = []
        """The text of every batch beyond the sampled token: what the loop injected (or re-added after a rollback)."""
        self.rollbacks: list[int] = []

    @property
    def n_past(self) -> int:
        return len(self.cache)

    def sample(self) -> int:
        token = self._script[self._pos] if self._pos < len(self._script) else STOP
        self._pos += 1
        self._last = token
        return token

    def is_stop(self, token: int) -> bool:
        return token == STOP

    def piece(self, token: int) -> bytes:
        return b"" if token == STOP else self.vocab[token].encode("utf-8")

    def tokenize(self, text: str) -> list[int]:
        out = []
        for chunk in pieces(text):
            if chunk not in self._ids:
                self._ids[chunk] = len(self.vocab)
                self.vocab.append(chunk)
            out.append(self._ids[chunk])
        return out

    def text(self, tokens: list[int] | None = None) -> str:
        """The text of `tokens` (default: the whole KV cache)."""
        return "".join(self.vocab[t] for t in (self.cache if tokens is None else tokens) if t != STOP)

    def eval(self, tokens: list[int]) -> None:
        assert len(self.cache) + len(tokens) <= self.n_ctx, "evaluated past the context"
        self.cache += tokens
        self.evaluated += len(tokens)
        injected = tokens[1:] if tokens[:1] == [self._last] else tokens
        if injected:
            self._react(self.text(injected))

    def rollback(self, n_past: int) -> None:
        assert self.prompt_tokens <= n_past <= len(self.cache)
        self.rollbacks.append(n_past)
        del self.cache[n_past:]

    def _react(self, injected: str) -> None:
        self.injected.append(injected)
        for marker, phase in (("</think>", "answer"), ("\\boxed{", "boxed"), ("Wait", "wait")):
            if marker in injected:
                self.phase, self._script, self._pos = phase, self.tokenize(self.scripts[phase]), 0
                return
