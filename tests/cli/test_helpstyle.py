"""`--help` is plain text that fits 80 columns with no `<bool>`/`<str>` placeholders, and imports no pydantic/rich."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from clirun import vibelocal

COMMANDS = [
    [],
    ["solve"],
    ["chat"],
    ["tutor"],
    ["tutor", "start"],
    ["tutor", "check"],
    ["tutor", "rm"],
    ["doctor"],
    ["pull"],
    ["models"],
    ["models", "add"],
    ["models", "verify"],
    ["models", "rm"],
    ["config"],
    ["config", "show"],
    ["config", "set"],
    ["config", "unset"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "vibelocal")
def test_help_reads_well_at_80_columns(command):
    out = vibelocal(*command, "--help", env={"COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("Usage: ")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert not re.search(r"<(bool|str|int|float|int range|float range|path)>", text), text
    assert not re.search(r"[─│╭╮╰╯]", text)  # no boxes squeezing the help into a narrow column


def test_the_help_path_imports_neither_pydantic_nor_rich():
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['vibelocal', '--help']\n"
        "try:\n    runpy.run_module('vibelocal', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pydantic', 'rich', 'textual', 'llama_cpp', 'huggingface_hub') if m in sys.modules),"
        " file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == "[]", out.stderr
