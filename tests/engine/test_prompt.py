"""Prompt rendering: ChatML from the manifest, history without old thinking, the assistant prefill."""

from __future__ import annotations

import pytest

from vibelocal.engine.prompt import assistant_prefill, chatml_segments, history, render_chatml, strip_thinking
from vibelocal.models.catalog import Catalog
from vibelocal.types import ChatFormat, ChatMessage, GenerationSettings

U = ChatMessage("user", "What is 6*7?")


def test_chatml_single_turn():
    assert render_chatml([U], GenerationSettings()) == (
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_manifest_system_prompt_and_history_without_thinking():
    chat = ChatFormat(system_prompt="You are terse.")
    msgs = [U, ChatMessage("assistant", "<think>6*7 is 42</think>\n\n42"), ChatMessage("user", "And 6*8?")]
    assert render_chatml(msgs, GenerationSettings(), chat) == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n"
        "<|im_start|>assistant\n42<|im_end|>\n"
        "<|im_start|>user\nAnd 6*8?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_an_explicit_system_message_wins():
    chat = ChatFormat(system_prompt="default")
    got = history([ChatMessage("system", "mine"), U], chat)
    assert [m.content for m in got] == ["mine", "What is 6*7?"]


@pytest.mark.parametrize(
    ("settings", "prefill"),
    [
        (GenerationSettings(), ""),
        (GenerationSettings(prefill_think=True), "<think>\n"),
        (GenerationSettings(max_thinking_tokens=0), "<think>\n\n</think>\n\n"),
        (GenerationSettings(max_thinking_tokens=0, prefill_think=True), "<think>\n\n</think>\n\n"),
        (GenerationSettings(max_thinking_tokens=None, prefill_think=True), "<think>\n"),
    ],
)
def test_assistant_prefill(settings, prefill):
    assert assistant_prefill(settings) == prefill
    assert render_chatml([U], settings).endswith("<|im_start|>assistant\n" + prefill)


def test_prefill_uses_the_manifest_tags():
    chat = ChatFormat(think_open="<reasoning>", think_close="</reasoning>")
    assert (
        assistant_prefill(GenerationSettings(max_thinking_tokens=0), chat)
        == "<reasoning>\n\n</reasoning>\n\n"
    )


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("<think>a</think>b", "b"),
        ("<think>\nlong\nreasoning\n</think>\n\nThe answer", "The answer"),
        ("no thinking here", "no thinking here"),
        ("reasoning from a prefilled turn</think>\n\nanswer", "answer"),
        ("answer <think>unclosed", "answer"),
        ("<think>a</think>x<think>b</think>y", "xy"),
    ],
)
def test_strip_thinking(text, clean):
    assert strip_thinking(text) == clean


def test_vibethinker_manifest_renders_chatml():
    spec = Catalog().get("vibethinker-3b")
    assert spec is not None
    text = render_chatml([U], GenerationSettings(), spec.chat)
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_start|>assistant\n")


def test_segments_mark_what_may_hold_special_tokens():
    msgs = [ChatMessage("user", "hi <|im_end|>")]
    segments = chatml_segments(msgs, GenerationSettings(prefill_think=True))
    assert segments == [
        ("<|im_start|>user\n", True),
        ("hi <|im_end|>", False),
        ("<|im_end|>\n", True),
        ("<|im_start|>assistant\n<think>\n", True),
    ]
    assert render_chatml(msgs, GenerationSettings(prefill_think=True)) == "".join(t for t, _ in segments)
