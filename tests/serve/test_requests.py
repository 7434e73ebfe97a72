"""Request bodies to turns: the sampling and length fields land in GenerationSettings; bad input is a 400."""

from __future__ import annotations

import pytest

from vibelocal.config import BudgetSpec
from vibelocal.serve.errors import ApiError
from vibelocal.serve.requests import ServeDefaults, chat_request, completion_request
from vibelocal.types import ChatMessage, GenerationSettings

DEFAULTS = ServeDefaults(
    GenerationSettings(temperature=0.6, max_answer_tokens=2048), BudgetSpec("medium", 8192)
)
USER = [{"role": "user", "content": "hi"}]


def test_fields_reach_the_generation_settings() -> None:
    body = {
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "2+"}, {"type": "text", "text": "2?"}]},
        ],
        "temperature": 0,
        "top_p": 0.5,
        "seed": 11,
        "max_completion_tokens": 40,
        "max_tokens": 99,
        "stop": "END",
        "stream": True,
        "stream_options": {"include_usage": True},
        "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "auto",
    }
    turn = chat_request(body, DEFAULTS)
    assert turn.messages == (ChatMessage("system", "be brief"), ChatMessage("user", "2+2?"))
    s = turn.settings
    assert (s.temperature, s.top_p, s.seed, s.max_answer_tokens, s.max_thinking_tokens) == (
        0.0,
        0.5,
        11,
        40,
        2048,
    )
    assert turn.stop == ("END",)
    assert turn.stream and turn.include_usage and turn.tools_ignored


def test_defaults_apply_when_fields_are_absent() -> None:
    turn = chat_request({"messages": USER, "max_tokens": 7}, DEFAULTS)
    assert turn.settings.temperature == 0.6
    assert turn.settings.max_answer_tokens == 7
    assert turn.settings.max_thinking_tokens == 8192
    assert turn.budget.source == "server"
    assert not turn.stream and not turn.tools_ignored


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages[0]"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content",
        ),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [*USER, {"role": "assistant", "content": "x"}]}, "messages"),
        ({"messages": USER, "temperature": 3}, "temperature"),
        ({"messages": USER, "temperature": "hot"}, "temperature"),
        ({"messages": USER, "top_p": 0}, "top_p"),
        ({"messages": USER, "max_tokens": 0}, "max_tokens"),
        ({"messages": USER, "max_completion_tokens": "10"}, "max_completion_tokens"),
        ({"messages": USER, "seed": 1.5}, "seed"),
        ({"messages": USER, "n": 2}, "n"),
        ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": USER, "stop": [""]}, "stop"),
        ({"messages": USER, "stream": "yes"}, "stream"),
        ({"messages": USER, "stream_options": 1}, "stream_options"),
        ({"messages": USER, "tool_choice": "required"}, "tool_choice"),
        ({"messages": USER, "tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice"),
        ({"messages": USER, "reasoning_effort": "turbo"}, "reasoning_effort"),
    ],
)
def test_bad_chat_bodies_are_400s(body, param) -> None:
    with pytest.raises(ApiError) as info:
        chat_request(body, DEFAULTS)
    assert info.value.status == 400
    assert info.value.param == param


def test_a_raw_prompt_ending_in_the_think_tag_starts_inside_thinking() -> None:
    assert completion_request({"prompt": "Q: 1+1\n<think>\n"}, DEFAULTS).settings.prefill_think is True
    turn = completion_request({"prompt": ["1, 2, 3,"], "max_tokens": 5}, DEFAULTS)
    assert turn.prompt == "1, 2, 3," and turn.settings.prefill_think is False
    assert turn.settings.max_answer_tokens == 5


@pytest.mark.parametrize(
    "body", [{}, {"prompt": ""}, {"prompt": ["a", "b"]}, {"prompt": 5}, {"prompt": "x", "echo": True}]
)
def test_bad_completion_bodies_are_400s(body) -> None:
    with pytest.raises(ApiError) as info:
        completion_request(body, DEFAULTS)
    assert info.value.status == 400
