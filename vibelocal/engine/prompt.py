"""Prompt text for a turn: ChatML from the model manifest, history without old thinking, the assistant prefill.

Pure string building. A GGUF without a manifest is rendered by the engine through llama-cpp-python's sandboxed
Jinja renderer (`engine/runtime.py`); this module prepares the messages for it and the prefill it appends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vibelocal.types import ChatFormat, ChatMessage, GenerationSettings

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def strip_thinking(text: str, chat: ChatFormat | None = None) -> str:
    """Remove `<think>…</think>` blocks (and a dangling unclosed one) from an old assistant message."""
    open_tag = chat.think_open if chat else "<think>"
    close_tag = chat.think_close if chat else "</think>"
    o, c = re.escape(open_tag), re.escape(close_tag)
    text = re.sub(f"{o}.*?{c}", "", text, flags=re.DOTALL)
    text = re.sub(f"{o}.*\\Z", "", text, flags=re.DOTALL)  # unclosed: everything after the tag was reasoning
    if close_tag in text:  # reasoning without an opening tag (prefilled turn): keep what follows the close
        text = text.rsplit(close_tag, 1)[1]
    return text.strip()


def history(messages: Sequence[ChatMessage], chat: ChatFormat | None = None) -> list[ChatMessage]:
    """Messages as the model sees them: the manifest's system prompt first when none is given, and old
    assistant turns without their thinking."""
    out: list[ChatMessage] = []
    if chat and chat.system_prompt and not (messages and messages[0].role == "system"):
        out.append(ChatMessage("system", chat.system_prompt))
    for m in messages:
        if m.role == "assistant":
            out.append(ChatMessage("assistant", strip_thinking(m.content, chat)))
        else:
            out.append(m)
    return out


def assistant_prefill(settings: GenerationSettings, chat: ChatFormat | None = None) -> str:
    """Text that starts the assistant turn: an empty think block when thinking is off (budget 0), the opening
    tag when the model expects the turn to start inside thinking (`prefill_think`), else nothing."""
    open_tag = chat.think_open if chat else "<think>"
    close_tag = chat.think_close if chat else "</think>"
    if settings.max_thinking_tokens == 0:
        return f"{open_tag}\n\n{close_tag}\n\n"
    if settings.prefill_think:
        return f"{open_tag}\n"
    return ""


def chatml_segments(
    messages: Sequence[ChatMessage], settings: GenerationSettings, chat: ChatFormat | None = None
) -> list[tuple[str, bool]]:
    """The ChatML prompt as (text, is_markup) pieces: markup may hold special tokens, message content may not
    (a user who types `<|im_end|>` gets those characters, not an end of turn)."""
    out: list[tuple[str, bool]] = []
    for m in history(messages, chat):
        out += [(f"{IM_START}{m.role}\n", True), (m.content, False), (f"{IM_END}\n", True)]
    out.append((f"{IM_START}assistant\n{assistant_prefill(settings, chat)}", True))
    return [(text, markup) for text, markup in out if text]


def render_chatml(
    messages: Sequence[ChatMessage], settings: GenerationSettings, chat: ChatFormat | None = None
) -> str:
    """The full ChatML prompt, ending with the assistant header and its prefill."""
    return "".join(text for text, _ in chatml_segments(messages, settings, chat))


def as_template_messages(messages: Sequence[ChatMessage], chat: ChatFormat | None = None) -> list[dict]:
    """The history as the plain dicts a Jinja chat template expects."""
    return [{"role": m.role, "content": m.content} for m in history(messages, chat)]
