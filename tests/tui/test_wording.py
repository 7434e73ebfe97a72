"""The core's command-line hints, as the chat app words them: no flag names, no commands to type."""

from __future__ import annotations

import re

import pytest

from vibelocal.errors import BadInputError, ModelLoadError, UsageError
from vibelocal.tui.wording import in_app_error, in_app_hint

CLI = re.compile(r"(?<![\w-])--[a-z]|\bvibelocal [a-z]")


@pytest.mark.parametrize(
    ("hint", "wording"),
    [
        ("run: vibelocal pull vibethinker-3b", "download it from the first-run screen, or choose a model in Settings (F3)"),
        ("run: vibelocal pull", "download it from the first-run screen, or choose a model in Settings (F3)"),
        ("re-download it with: vibelocal pull --force", "the file may be damaged: choose a model in Settings (F3)"),
        ("pass --api-key or set VIBELOCAL_API_KEY", "set api_key in config.toml (or VIBELOCAL_API_KEY) and restart the app"),
        ("check that it runs and the URL (--backend) is right", "check that the server runs and that its address is right"),
        ("shorten it, or raise --ctx", "shorten it, or start a new conversation (Ctrl+N)"),
        ("try a larger --budget", "try a larger budget: Settings (F3), or /budget 8k before the message"),
        ("give one: vibelocal tutor --resume 3 --key ANSWER, or try a larger --budget", "try a larger budget: Settings (F3), or /budget 8k before the message"),
        ("pick another with --name", "pick another name"),
        ("see: vibelocal tutor --list", None),
        ("use unlimited for no limit", "use unlimited for no limit"),
        (None, None),
    ],
)  # fmt: skip
def test_in_app_hint(hint, wording):
    assert in_app_hint(hint) == wording


def test_every_hint_of_the_core_reads_without_cli_words():
    """Scan the package for hints the core writes; each one the app can show must come out without CLI words."""
    from pathlib import Path

    import vibelocal

    root = Path(vibelocal.__file__).parent
    hints = [
        m
        for path in root.rglob("*.py")
        if "cli" not in path.relative_to(root).parts
        for m in re.findall(r'hint=f?"([^"]+)"', path.read_text(encoding="utf-8"))
    ]
    assert len(hints) > 10
    for hint in hints:
        assert not CLI.search(in_app_hint(hint) or ""), hint


def test_the_offline_ways_forward_point_at_the_first_run_screen():
    from vibelocal.models.reach import OFFLINE_WAYS_FORWARD, WAYS_FORWARD

    for hint in (WAYS_FORWARD, OFFLINE_WAYS_FORWARD):
        assert in_app_hint(hint) == (
            "use a GGUF file you already have (the first-run screen takes one), or download once online"
        )


def test_in_app_error():
    assert in_app_error(
        ModelLoadError("cannot load x.gguf: not a GGUF file", hint="run: vibelocal pull")
    ) == (
        "cannot load x.gguf: not a GGUF file (download it from the first-run screen, or choose a model in Settings (F3))"
    )
    assert in_app_error(BadInputError("too long", hint="see: vibelocal tutor --list")) == "too long"
    assert in_app_error(UsageError("invalid budget 'x'")) == "invalid budget 'x'"
    assert in_app_error(RuntimeError("boom")) == "RuntimeError: boom"


def test_a_backend_address_error_names_no_flag():
    from vibelocal.engine.remote.detect import candidate_urls

    with pytest.raises(UsageError) as caught:
        candidate_urls("ftp://host")
    assert caught.value.message.startswith("--backend")  # written for the command line
    line = in_app_error(caught.value)
    assert line == (
        "the backend address 'ftp://host' is not an http(s) URL "
        "(for example http://host:8080 (the backend setting in config.toml))"
    )
