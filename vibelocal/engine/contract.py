"""What a front end needs from an engine: `ChatEngine`, met by the llama.cpp adapter (engine/llama/) and by
`ScriptedEngine` (engine/scripted.py), and by any remote backend added later.

Concurrency contract (docs/engine.md): one turn at a time per engine; `stream()` may be consumed on any one
thread while `TurnControl` commands come from any other and act within one token; `close()` may come from any
thread: it cancels the running turn, waits for it (bounded, about 2 s) and only then frees; after it,
`stream()` raises. The session never closes an engine under a running turn except through `close()`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from vibelocal.engine.control import TurnControl
from vibelocal.types import ChatMessage, EngineInfo, GenerationSettings, StreamEvent


class ChatEngine(Protocol):
    """What the session needs from an engine; `engine.llama.LlamaEngine` is the real one."""

    info: EngineInfo

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's vocabulary (for input-length checks)."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]:
        """Generate one assistant turn; the last event is always `done`."""
        ...

    def close(self) -> bool | None:
        """Cancel a running turn, wait for it (bounded), free. False: the turn had not stopped in time (the
        engine still frees only after it has)."""
        ...
