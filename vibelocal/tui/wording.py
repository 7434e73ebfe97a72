"""Errors as the chat app shows them: the core's hints are written for the command line, these are not (pure)."""

from __future__ import annotations

import re

from vibelocal.errors import VibelocalError

CHOOSE_MODEL = "choose a model in Settings (F3)"
BIGGER_BUDGET = "try a larger budget: Settings (F3), or /budget 8k before the message"

_HINTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"--model PATH"),
        "use a GGUF file you already have (the first-run screen takes one), or download once online",
    ),
    (
        re.compile(r"re-download it|pull --force"),
        f"the file may be damaged: {CHOOSE_MODEL}",
    ),
    (re.compile(r"^run: vibelocal pull\b"), f"download it from the first-run screen, or {CHOOSE_MODEL}"),
    (re.compile(r"--api-key"), "set api_key in config.toml (or VIBELOCAL_API_KEY) and restart the app"),
    (
        re.compile(r"for example --backend"),
        "for example http://host:8080 (the backend setting in config.toml)",
    ),
    (re.compile(r"--backend"), "check that the server runs and that its address is right"),
    (re.compile(r"--ctx"), "shorten it, or start a new conversation (Ctrl+N)"),
    (re.compile(r"--budget"), BIGGER_BUDGET),
    (re.compile(r"--name"), "pick another name"),
]
_FLAG_NAMES = {"--backend": "the backend address", "--effort": "the effort"}
"""Flags a core message itself may name (the `backend` setting arrives through `--backend` or config.toml)."""
_CLI_WORDS = re.compile(r"(?<![\w-])--[a-z]|\bvibelocal [a-z]|\bpass -")
"""What gives a sentence away as written for a terminal: a flag, or a command to type."""


def in_app_hint(hint: str | None) -> str | None:
    """The hint in the app's words; None when it only made sense on the command line."""
    if not hint:
        return None
    for pattern, wording in _HINTS:
        if pattern.search(hint):
            return wording
    return None if _CLI_WORDS.search(hint) else hint


def in_app_error(exc: BaseException) -> str:
    """One line for the app: the message and the in-app hint of a VibelocalError, or the exception's type and text."""
    if not isinstance(exc, VibelocalError):
        message = getattr(exc, "message", None)
        if not isinstance(message, str) or not message:
            return f"{type(exc).__name__}: {exc}"
        exc_hint = getattr(exc, "hint", None)
    else:
        message, exc_hint = exc.message, exc.hint
    for flag, words in _FLAG_NAMES.items():
        message = re.sub(rf"(?<![\w-]){flag}\b", words, message)
    hint = in_app_hint(exc_hint)
    return f"{message} ({hint})" if hint else message
