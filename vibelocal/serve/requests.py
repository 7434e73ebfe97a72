"""A `/v1/chat/completions` or `/v1/completions` JSON body mapped to one engine turn, or a 400 saying why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from vibelocal.config import BudgetSpec
from vibelocal.serve.budgets import DEFAULT_EFFORT_TOKENS, BudgetChoice, choose_budget
from vibelocal.serve.errors import bad_request
from vibelocal.types import ChatMessage, GenerationSettings

ReasoningField = Literal["both", "reasoning_content", "reasoning"]

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOPS = 4


@dataclass(frozen=True)
class ServeDefaults:
    """What the server applies when a request leaves a field out (from the command line and settings)."""

    generation: GenerationSettings
    budget: BudgetSpec
    effort_tokens: Mapping[str, int | None] = field(default_factory=lambda: dict(DEFAULT_EFFORT_TOKENS))
    reasoning_field: ReasoningField = "both"


@dataclass(frozen=True)
class TurnRequest:
    """One request, validated: what to generate and how to answer."""

    settings: GenerationSettings
    budget: BudgetChoice
    messages: tuple[ChatMessage, ...] = ()
    prompt: str | None = None
    """`/v1/completions`: the raw prompt, templated by the client."""
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = ()
    reasoning_field: ReasoningField = "both"
    tools_ignored: bool = False


def _number(
    body: Mapping[str, Any], name: str, lo: float, hi: float, *, lo_open: bool = False
) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"{name} must be a number, got {value!r}", name)
    if value > hi or value < lo or (lo_open and value == lo):
        raise bad_request(f"{name} must be {'>' if lo_open else '>='} {lo} and <= {hi}, got {value}", name)
    return float(value)


def _integer(body: Mapping[str, Any], name: str, lo: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name} must be an integer, got {value!r}", name)
    if lo is not None and value < lo:
        raise bad_request(f"{name} must be >= {lo}, got {value}", name)
    return value


def _text_of(content: Any, where: str) -> str:
    """A message's content: a string, or a list of `{"type": "text", "text": …}` parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(f"{where}: only text content parts are supported, got {kind!r}", where)
            parts.append(part["text"])
        return "".join(parts)
    raise bad_request(f"{where} must be a string or a list of text parts", where)


def parse_messages(value: Any) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise bad_request("messages must be a non-empty array", "messages", "missing_messages")
    out: list[ChatMessage] = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad_request(f"{where} must be an object with role and content", where)
        role = m.get("role")
        if role == "tool" or role == "function":
            raise bad_request(f"{where}: this model makes no tool calls, so it takes no tool results", where)
        if role not in _ROLES:
            raise bad_request(
                f"{where}.role must be system, developer, user or assistant, got {role!r}", where
            )
        out.append(ChatMessage(_ROLES[role], _text_of(m.get("content"), f"{where}.content")))  # type: ignore[arg-type]
    if out[-1].role == "assistant":
        raise bad_request("the last message must be from the user (or system), not the assistant", "messages")
    return tuple(out)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or not all(isinstance(s, str) and s for s in stops)
        or len(stops) > MAX_STOPS
    ):
        raise bad_request(f"stop must be a non-empty string or an array of up to {MAX_STOPS} of them", "stop")
    return tuple(stops)


def _check_tools(body: Mapping[str, Any]) -> bool:
    """`tools` are accepted and never called; a tool_choice that demands a call cannot be honoured (400)."""
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none"):
        raise bad_request(
            "this model cannot call tools: tool_choice must be auto or none",
            "tool_choice",
            "tools_unsupported",
        )
    return bool(body.get("tools") or body.get("functions"))


def _common(body: Mapping[str, Any], defaults: ServeDefaults) -> dict[str, Any]:
    """The fields both endpoints share: sampling, lengths, stop, stream, budget."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    n = _integer(body, "n", 1)
    if n not in (None, 1):
        raise bad_request("only n=1 is supported", "n")
    temperature = _number(body, "temperature", 0.0, 2.0)
    top_p = _number(body, "top_p", 0.0, 1.0, lo_open=True)
    seed = _integer(body, "seed")
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("stream_options must be an object", "stream_options")
    budget = choose_budget(body, defaults.budget, defaults.effort_tokens)
    base = defaults.generation
    settings = replace(
        base,
        temperature=base.temperature if temperature is None else temperature,
        top_p=base.top_p if top_p is None else top_p,
        seed=base.seed if seed is None else seed,
        max_answer_tokens=base.max_answer_tokens if max_tokens is None else max_tokens,
        max_thinking_tokens=budget.spec.tokens,
        thinking_time_s=budget.spec.seconds,
    )
    return {
        "settings": settings,
        "budget": budget,
        "stream": stream,
        "include_usage": bool(options.get("include_usage")),
        "stop": _stops(body.get("stop")),
        "reasoning_field": defaults.reasoning_field,
    }


def chat_request(body: Any, defaults: ServeDefaults) -> TurnRequest:
    """`POST /v1/chat/completions`."""
    common = _common(body, defaults)
    messages = parse_messages(body.get("messages"))
    return TurnRequest(messages=messages, tools_ignored=_check_tools(body), **common)


def completion_request(body: Any, defaults: ServeDefaults, think_open: str = "<think>") -> TurnRequest:
    """`POST /v1/completions`: a raw prompt; ending it with the think tag starts the turn inside thinking."""
    common = _common(body, defaults)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad_request("prompt must be a non-empty string (one prompt per request)", "prompt")
    if body.get("echo") or body.get("suffix") or (body.get("best_of") or 1) != 1:
        raise bad_request("echo, suffix and best_of are not supported", "echo")
    settings = common.pop("settings")
    inside = prompt.rstrip().endswith(think_open)
    return TurnRequest(settings=replace(settings, prefill_think=inside), prompt=prompt, **common)
