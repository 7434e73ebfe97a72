"""Every client's reasoning-budget field mapped to the one turn-wide thinking budget, or a 400.

OpenAI's `reasoning_effort`, OpenRouter's `reasoning: {effort | max_tokens | enabled}`, llama.cpp's
`thinking_budget_tokens` / `reasoning_budget_tokens` and vLLM's `thinking_token_budget` all land here. Two
fields that disagree, an unknown effort or a malformed count are errors, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vibelocal.config import BudgetSpec, parse_budget
from vibelocal.errors import UsageError
from vibelocal.serve.errors import bad_request

EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high", "xhigh", "max")

DEFAULT_EFFORT_TOKENS: dict[str, int | None] = {
    "none": 0,
    "minimal": 512,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": None,
}
"""What each `reasoning_effort` means in thinking tokens (None: unlimited, bounded by the context);
`vibelocal serve --effort LEVEL=BUDGET` changes it."""

COUNT_FIELDS = ("thinking_budget_tokens", "reasoning_budget_tokens", "thinking_token_budget")
"""Top-level token counts (llama.cpp builds, vLLM); -1 means unlimited, 0 no thinking."""


@dataclass(frozen=True)
class BudgetChoice:
    """The budget of one request and where it came from (`server` when the request named none)."""

    spec: BudgetSpec
    source: str
    exclude_reasoning: bool = False
    """OpenRouter's `reasoning.exclude`: think, but leave the reasoning out of the response."""


def parse_effort_map(items: list[str] | None) -> dict[str, int | None]:
    """`--effort low=512 --effort high=16k`: the default map with those levels changed (UsageError if bad)."""
    table = dict(DEFAULT_EFFORT_TOKENS)
    for item in items or []:
        level, sep, value = item.partition("=")
        level = level.strip().lower()
        if not sep or level not in EFFORTS:
            raise UsageError(
                f"invalid --effort {item!r}: use LEVEL=BUDGET, LEVEL one of {', '.join(EFFORTS)}"
            )
        spec = parse_budget(value)
        if spec.seconds is not None:
            raise UsageError(f"invalid --effort {item!r}: an effort is a token count, not a time")
        table[level] = spec.tokens
    return table


def _count(value: Any, param: str) -> BudgetSpec:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise bad_request(
            f"{param} must be an integer >= -1 (-1 unlimited, 0 no thinking), got {value!r}", param
        )
    return BudgetSpec(str(value), None if value == -1 else value)


def _effort(value: Any, param: str, table: Mapping[str, int | None]) -> BudgetSpec:
    if not isinstance(value, str) or value.lower() not in table:
        raise bad_request(
            f"unknown reasoning effort {value!r}: use one of {', '.join(EFFORTS)}", param, "unknown_effort"
        )
    return BudgetSpec(value.lower(), table[value.lower()])


def _openrouter(value: Any, table: Mapping[str, int | None]) -> tuple[list[tuple[str, BudgetSpec]], bool]:
    """OpenRouter's `reasoning` object: its budgets and whether the reasoning is excluded from the response."""
    if not isinstance(value, dict):
        raise bad_request(
            "reasoning must be an object: {effort | max_tokens | enabled | exclude}", "reasoning"
        )
    unknown = sorted(set(value) - {"effort", "max_tokens", "enabled", "exclude"})
    if unknown:
        raise bad_request(f"unknown field reasoning.{unknown[0]}", f"reasoning.{unknown[0]}")
    found: list[tuple[str, BudgetSpec]] = []
    if value.get("effort") is not None:
        found.append(("reasoning.effort", _effort(value["effort"], "reasoning.effort", table)))
    if value.get("max_tokens") is not None:
        spec = _count(value["max_tokens"], "reasoning.max_tokens")
        found.append(("reasoning.max_tokens", spec))
    enabled = value.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise bad_request("reasoning.enabled must be true or false", "reasoning.enabled")
    if enabled is False:
        found.append(("reasoning.enabled", BudgetSpec("off", 0)))
    exclude = value.get("exclude", False)
    if not isinstance(exclude, bool):
        raise bad_request("reasoning.exclude must be true or false", "reasoning.exclude")
    return found, exclude


def choose_budget(
    body: Mapping[str, Any], default: BudgetSpec, table: Mapping[str, int | None] = DEFAULT_EFFORT_TOKENS
) -> BudgetChoice:
    """The request's thinking budget: every budget field it sets must agree; none set gives `default`."""
    found: list[tuple[str, BudgetSpec]] = []
    if body.get("reasoning_effort") is not None:
        found.append(("reasoning_effort", _effort(body["reasoning_effort"], "reasoning_effort", table)))
    exclude = False
    if body.get("reasoning") is not None:
        extra, exclude = _openrouter(body["reasoning"], table)
        found += extra
    for name in COUNT_FIELDS:
        if body.get(name) is not None:
            found.append((name, _count(body[name], name)))
    if not found:
        return BudgetChoice(default, "server", exclude)
    first_name, first = found[0]
    for name, spec in found[1:]:
        if spec.tokens != first.tokens:
            raise bad_request(
                f"conflicting reasoning budgets: {first_name} gives {_show(first)}, {name} gives {_show(spec)}",
                name,
                "conflicting_budget",
            )
    return BudgetChoice(first, first_name, exclude)


def _show(spec: BudgetSpec) -> str:
    return "unlimited" if spec.tokens is None else f"{spec.tokens} tokens"
