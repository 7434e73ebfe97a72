"""A fork of a multi-sequence engine: the same model, context and engine thread, a sequence slot of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from vibelocal.engine.control import TurnControl
from vibelocal.engine.llama.runtime import CLOSE_WAIT_S, EngineClosedError, RawPrompt
from vibelocal.engine.tags import ThinkTags
from vibelocal.types import ChatFormat, ChatMessage, EngineInfo, GenerationSettings, StreamEvent

if TYPE_CHECKING:
    from vibelocal.engine.llama.batch import BatchScheduler
    from vibelocal.engine.llama.runtime import LlamaEngine


class LlamaFork:
    """What `LlamaEngine.fork()` returns: a `ChatEngine` whose turns run in their own sequence of the parent's
    context, decoded in one batch with the parent's and the other forks' (one turn at a time per fork).

    `close()` cancels this fork's turn and frees its sequence slot, never the model: the parent's `close()`
    does that (after which a fork's calls raise `EngineClosedError`)."""

    def __init__(self, engine: LlamaEngine, scheduler: BatchScheduler) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self.slot = scheduler.take_slot()
        self._busy = threading.Lock()
        self._closed = False

    @property
    def info(self) -> EngineInfo:
        return self._engine.info

    @property
    def chat(self) -> ChatFormat:
        return self._engine.chat

    @property
    def tags(self) -> ThinkTags:
        return self._engine.tags

    @property
    def parallel(self) -> int:
        return self._engine.parallel

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    def fork(self) -> LlamaFork:
        return self._engine.fork()

    def count_tokens(self, text: str) -> int:
        return self._engine.count_tokens(text)

    def tokenize(self, text: str) -> list[int]:
        return self._engine.tokenize(text)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self._engine.detokenize(tokens)

    def render_prompt(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> str:
        return self._engine.render_prompt(messages, settings)

    def prompt_tokens(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> list[int]:
        return self._engine.prompt_tokens(messages, settings)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]:
        if self._closed:
            raise EngineClosedError("this fork of the engine is closed")
        return self._scheduler.stream(self.slot, self._busy, messages, settings, control)

    def stream_prompt(
        self, prompt: str, settings: GenerationSettings, control: TurnControl | None = None
    ) -> Iterator[StreamEvent]:
        return self.stream(RawPrompt(prompt), settings, control)  # type: ignore[arg-type]

    def close(self, timeout: float = CLOSE_WAIT_S) -> bool:
        """Cancel this fork's turn, wait for it (at most `timeout` s), free its slot. True when the turn (if
        any) has ended; otherwise the slot is freed when it does."""
        if self._closed:
            return True
        self._closed = True
        turn = self._scheduler.live_turn(self.slot)
        ended = True
        if turn is not None:
            turn.control.cancel()
            ended = turn.handoff.wait_end(timeout)
        self._scheduler.give_slot(self.slot)
        return ended
