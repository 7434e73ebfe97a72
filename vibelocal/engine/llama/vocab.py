"""Think tags looked up in a loaded llama.cpp vocabulary: a single token (any kind) or several pieces."""

from __future__ import annotations

from typing import Any

from vibelocal.engine.tags import ThinkTags
from vibelocal.types import ChatFormat


def single_token(llm: Any, text: str) -> int | None:
    """The id of the one token whose text is `text` (CONTROL, USER_DEFINED or plain), else None."""
    if not text:
        return None
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    if len(ids) != 1:
        return None
    got = llm._model.token_get_text(ids[0])
    return ids[0] if got == text else None


def think_tags(llm: Any, chat: ChatFormat) -> ThinkTags:
    """How this vocabulary spells the chat format's think tags."""
    return ThinkTags(
        open_text=chat.think_open,
        close_text=chat.think_close,
        open_id=single_token(llm, chat.think_open),
        close_id=single_token(llm, chat.think_close),
    )
