"""ThinkTags: how a vocabulary spells the think tags, as single token ids or as text, and text encoded with them.

When `<think>` / `</think>` are single tokens (VibeThinker's added tokens, CONTROL or USER_DEFINED), the engine
detects them by id, renders their text, and injects them as those ids: a forced `</think>` reaches the model as
the token it was trained on, not as the pieces `</`, `think`, `>`. When a tag is several pieces (the generic
Qwen2 vocabulary), the splitter finds it in the text. Looked up at load by `engine/llama/vocab.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

TagKind = Literal["open", "close"]


@dataclass(frozen=True)
class ThinkTags:
    """The think tags of one loaded vocabulary."""

    open_text: str = "<think>"
    close_text: str = "</think>"
    open_id: int | None = None
    """The single token of `<think>` (None: the tag is several pieces)."""
    close_id: int | None = None
    """The single token of `</think>` (None: the tag is several pieces)."""

    @property
    def mode(self) -> str:
        """`token` when both tags are single tokens, `text` when neither is, `mixed` otherwise."""
        n = (self.open_id is not None) + (self.close_id is not None)
        return ("text", "mixed", "token")[n]

    def ids(self) -> dict[int, TagKind]:
        """Tag token id -> which tag it is."""
        out: dict[int, TagKind] = {}
        if self.open_id is not None:
            out[self.open_id] = "open"
        if self.close_id is not None:
            out[self.close_id] = "close"
        return out

    def pieces(self) -> dict[int, bytes]:
        """Tag token id -> the bytes it renders as (a CONTROL token would otherwise render empty)."""
        texts = {"open": self.open_text, "close": self.close_text}
        return {tid: texts[kind].encode("utf-8") for tid, kind in self.ids().items()}

    def encode(self, text: str, tokenize: Callable[[str], list[int]]) -> list[int]:
        """Tokens of engine-made `text` (never a user's): each single-token tag becomes its id, the rest is
        tokenized as plain text by `tokenize`."""
        tags = [
            (t, i)
            for t, i in ((self.close_text, self.close_id), (self.open_text, self.open_id))
            if i is not None
        ]
        if not tags:
            return tokenize(text)
        out: list[int] = []
        while text:
            found = [(text.find(t), t, i) for t, i in tags if t in text]
            if not found:
                out += tokenize(text)
                break
            at, tag, tid = min(found)
            if at:
                out += tokenize(text[:at])
            out.append(tid)
            text = text[at + len(tag) :]
        return out
