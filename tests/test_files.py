"""files.py: regular files only, caps with exact numbers, JSON within bounds."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from vibelocal.errors import BadInputError, ConfigError
from vibelocal.files import json_depth, loads_bounded, read_capped, read_stdin_capped


def test_read_capped_reads_a_regular_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc")
    assert read_capped(path, "thing", 3) == b"abc"


def test_the_cap_is_exact(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"abcd")
    with pytest.raises(BadInputError, match=r"is too large: 4 bytes \(the limit is 3 bytes\)$"):
        read_capped(path, "thing", 3)


def test_the_error_class_is_the_callers(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        read_capped(tmp_path / "none.toml", "config file", 10, ConfigError)


def test_a_fifo_never_blocks(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(BadInputError, match=r"is a named pipe \(FIFO\), not a thing"):
        read_capped(fifo, "thing", 10)


def test_a_device_is_refused():
    with pytest.raises(BadInputError, match="/dev/zero is a character device, not a thing"):
        read_capped(Path("/dev/zero"), "thing", 10)


def test_stdin_closed_and_too_large():
    with pytest.raises(BadInputError, match="stdin is closed: cannot read pairs from it"):
        read_stdin_capped(None, "pairs", 10)
    with pytest.raises(
        BadInputError, match=r"stdin is too large: more than 10 bytes \(the limit is 10 bytes\)"
    ):
        read_stdin_capped(io.BytesIO(b"x" * 11), "pairs", 10)
    assert read_stdin_capped(io.BytesIO(b"x" * 10), "pairs", 10) == b"x" * 10


@pytest.mark.parametrize(
    ("text", "depth"),
    [("{}", 1), ("[[[]]]", 3), ('{"a": "[[[[[["}', 1), ('["\\"[[["]', 1), ("1", 0)],
)
def test_json_depth_ignores_brackets_in_strings(text, depth):
    assert json_depth(text) == depth


def test_loads_bounded_refuses_depth_and_digits_but_reads_the_rest():
    with pytest.raises(ValueError, match=r"nested 100,000 levels deep \(the limit is 64\)"):
        loads_bounded("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"an integer of 5,000 digits \(the limit is 64\)"):
        loads_bounded("[" + "7" * 5000 + "]")
    with pytest.raises(json.JSONDecodeError):
        loads_bounded("{nope")
    assert loads_bounded('{"a": [1, -2, 3.5, "x"]}') == {"a": [1, -2, 3.5, "x"]}
