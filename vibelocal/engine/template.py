"""A bare GGUF's chat template, rendered safely: sandboxed Jinja with a time and an output-size bound, and message
text kept apart from markup so it is tokenized without special tokens (typed `<|im_end|>` stays characters).

Messages are rendered as unguessable placeholders, then the output is cut at them: what the template wrote is
markup (its special tokens parsed), what the user wrote is content (never parsed). Any failure — a syntax error,
an undefined name, a sandbox violation, too much time or output, a template that rewrites message text — is one
`ModelLoadError` line (exit code 5).
"""

from __future__ import annotations

import re
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from vibelocal.errors import ModelLoadError

MAX_SECONDS = 2.0
"""Wall-clock bound on one render (a template with a huge loop fails instead of hanging)."""
MAX_CHARS = 4_000_000
"""Bound on the rendered markup and on any string or list a template builds (`'A' * 300000000` fails fast)."""
_WIDTH = re.compile(r"%[-+ #0]*(\d+)|\{[^{}]*:[^{}]*?(\d+)[^{}]*\}")


class TemplateLimit(Exception):
    """The template asked for more time or memory than a prompt needs."""


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, bytes, list, tuple)) and len(value) > MAX_CHARS:
        raise TemplateLimit(f"it builds a value of {len(value):,} items (the limit is {MAX_CHARS:,})")
    return value


def _check_args(args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    for a in (*args, *kwargs.values()):
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_CHARS:
            raise TemplateLimit(f"it asks for a size of {a:,} (the limit is {MAX_CHARS:,})")
        if isinstance(a, str) and any(int(w or v or 0) > MAX_CHARS for w, v in _WIDTH.findall(a)):
            raise TemplateLimit("it asks for a field wider than any prompt")


def _environment() -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**", "%", "+"])

        def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
            if op == "*":
                seq, n = (left, right) if isinstance(right, int) else (right, left)
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_CHARS:
                    raise TemplateLimit(f"it multiplies a value to {len(seq) * n:,} items")
            if op == "**" and isinstance(right, int) and abs(right) > 4096:
                raise TemplateLimit(f"it raises a number to the power {right:,}")
            if op == "%" and isinstance(left, str):
                _check_args([left], {})
            return _check_size(super().call_binop(context, op, left, right))

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
            owner = getattr(
                getattr(__obj, "__wrapped__", __obj), "__self__", None
            )  # "fmt".format: its string too
            _check_args((*args, owner) if isinstance(owner, str) else args, kwargs)
            return _check_size(super().call(__context, __obj, *args, **kwargs))

    env = Bounded(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    for name, f in list(env.filters.items()):
        env.filters[name] = _guarded(f)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
    return env


def _guarded(f: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(f)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        _check_args(args[1:], kwargs)
        return _check_size(f(*args, **kwargs))

    return filtered


def _raise(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def render(template: str, variables: dict[str, Any], *, seconds: float = MAX_SECONDS) -> str:
    """Render `template` in the bounded sandbox; every failure is a ModelLoadError."""
    from jinja2.exceptions import TemplateError

    deadline = 0.0

    def tracer(frame: Any, event: str, arg: Any) -> Any:  # the time bound, checked at every line
        if time.monotonic() > deadline:
            raise TemplateLimit(f"rendering took longer than {seconds:g} s")
        return tracer

    out: list[str] = []
    size = 0
    previous = sys.gettrace()
    try:
        compiled = _environment().from_string(template)
        deadline = time.monotonic() + seconds
        sys.settrace(tracer)
        for chunk in compiled.generate(**variables):
            size += len(chunk)
            if size > MAX_CHARS:
                raise TemplateLimit(f"its output passed {MAX_CHARS:,} characters")
            out.append(chunk)
    except TemplateLimit as exc:
        raise template_error(str(exc)) from None
    except TemplateError as exc:
        raise template_error(f"{type(exc).__name__}: {exc}") from None
    except (RecursionError, MemoryError, OverflowError) as exc:
        raise template_error(type(exc).__name__) from None
    except Exception as exc:  # noqa: BLE001 - a template can raise anything its filters raise
        raise template_error(f"{type(exc).__name__}: {exc}") from None
    finally:
        sys.settrace(previous)
    return "".join(out)


def template_error(detail: str) -> ModelLoadError:
    """The one-line error of a chat template that cannot be used (exit code 5)."""
    detail = " ".join(detail.split())[:200]
    return ModelLoadError(
        f"the model's chat template cannot be used: {detail}",
        hint="use a model with a manifest, or a GGUF with a standard chat template",
    )


def segments(
    template: str,
    messages: Sequence[dict[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    seconds: float = MAX_SECONDS,
) -> list[tuple[str, bool]]:
    """The rendered prompt as (text, is_markup) pieces, message content never marked up."""
    nonce = secrets.token_hex(8)
    marks = [{**m, "content": f"\x02{nonce}:{i}\x03"} for i, m in enumerate(messages)]
    rendered = render(
        template,
        {"messages": marks, "bos_token": bos_token, "eos_token": eos_token, "add_generation_prompt": True},
        seconds=seconds,
    )
    parts = re.split(f"\x02{nonce}:(\\d+)\x03", rendered)
    out: list[tuple[str, bool]] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append((messages[int(part)]["content"], False))
        elif nonce in part or "\x02" in part:
            raise template_error(
                "it rewrites message text, so that text cannot be kept apart from its markup"
            )
        else:
            out.append((part, True))
    return [(text, markup) for text, markup in out if text]
