"""Problem files: reading, validation (one line per bad input), front matter, kind guessing, messages."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from vibelocal.errors import BadInputError, ExitCode
from vibelocal.models.catalog import Catalog
from vibelocal.problem import (
    DEFAULT_SUFFIXES,
    Problem,
    build_messages,
    decode_problem_bytes,
    ensure_fits,
    generation_reserve,
    guess_kind,
    read_problem,
    split_front_matter,
)
from vibelocal.types import ChatMessage


def write(tmp_path, data: bytes, name: str = "p.md"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_reads_utf8_with_bom_and_crlf(tmp_path):
    path = write(tmp_path, "\ufeffFind $x$ if $x^2 = 4$.\r\nGive x > 0.\r\n".encode())
    problem = read_problem(path)
    assert problem.text == "Find $x$ if $x^2 = 4$.\nGive x > 0."
    assert problem.kind == "math"
    assert problem.source == str(path)
    assert problem.meta == {}


def test_front_matter_is_parsed_and_stripped(tmp_path):
    path = write(
        tmp_path, b'---\nanswer: 42\nkind: code\ntitle: "The answer"\n# a comment\n---\nWhat is 6*7?\n'
    )
    problem = read_problem(path)
    assert problem.meta == {"answer": "42", "kind": "code", "title": "The answer"}
    assert problem.text == "What is 6*7?"
    assert problem.kind == "code"  # front matter beats the guess


def test_explicit_kind_beats_front_matter(tmp_path):
    path = write(tmp_path, b"---\nkind: code\n---\nWhat is 6*7?\n")
    assert read_problem(path, kind="other").kind == "other"


@pytest.mark.parametrize(
    "text, meta, body",
    [
        ("---\na: 1\n---\nbody", {"a": "1"}, "body"),
        ("---\na: 1\n...\nbody", {"a": "1"}, "body"),
        ("---\nJust a rule and prose.\n---\nmore", {}, "---\nJust a rule and prose.\n---\nmore"),
        ("---\na: 1\nnever closed", {}, "---\na: 1\nnever closed"),
        ("no front matter\n---\na: 1\n---", {}, "no front matter\n---\na: 1\n---"),
        ("---\nAnswer: '1/2'\n---\nx", {"answer": "1/2"}, "x"),
    ],
)
def test_split_front_matter(text, meta, body):
    assert split_front_matter(text) == (meta, body)


def test_stdin(tmp_path):
    problem = read_problem("-", stdin=io.BytesIO(b"Compute 2+2."))
    assert problem.source == "stdin"
    assert problem.text == "Compute 2+2."


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "is empty"),
        (b"  \n\t\r\n  ", "is blank (only whitespace)"),
        (b"---\nanswer: 3\n---\n\n", "front matter but no problem text"),
        (b"GGUF\x03\x00\x00\x00\x00\x00binary", "is binary, not text (NUL byte at offset 5)"),
        ("Find x.".encode("utf-16-le"), "looks like UTF-16 text without a BOM"),
        ("Find x.".encode("utf-16"), "is UTF-16 (little-endian) text, not UTF-8"),
        (b"\xfe\xff\x00F\x00i", "is UTF-16 (big-endian) text, not UTF-8"),
        ("Trouvez l'\u00e9l\u00e8ve".encode("latin-1"), "invalid byte 0xe9 at offset 10"),
        (b"---\nkind: poetry\n---\nA poem", "unknown kind 'poetry'"),
    ],
)
def test_bad_input_lines(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(BadInputError) as err:
        read_problem(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(BadInputError, match="problem file not found: .*nope.md"):
        read_problem(tmp_path / "nope.md")
    with pytest.raises(BadInputError, match="is a directory, not a problem file"):
        read_problem(tmp_path)


def test_huge_file_refused_before_reading(tmp_path):
    path = write(tmp_path, b"1+1=?\n" * 200_000)
    with pytest.raises(
        BadInputError, match=r"is too large: 1,200,000 bytes \(the limit is 1,000,000 bytes\)"
    ):
        read_problem(path)
    with pytest.raises(BadInputError, match="stdin is too large"):
        read_problem("-", stdin=io.BytesIO(b"x" * 2000), max_bytes=1000)
    with pytest.raises(BadInputError, match="stdin is empty"):
        read_problem("-", stdin=io.BytesIO(b""))


def test_decode_keeps_unicode_and_normalises_line_ends():
    assert decode_problem_bytes("a\r\nb\rc √2 ≤ π".encode()) == "a\nb\nc √2 ≤ π"


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Find all real $x$ such that $x^2 - 5x + 6 = 0$.", "math"),
        ("Compute $\\frac{1}{2} + \\frac{1}{3}$.", "math"),
        ("Prove that there are infinitely many primes.", "math"),
        ("How many positive integers less than 1000 are divisible by 7?", "math"),
        ("What is the probability that two dice sum to 7?", "math"),
        ("Let $f(x) = 3x + 2$. Evaluate f(4).", "math"),
        ("A triangle has sides 3, 4 and 5. What is its area?", "math"),
        ("2x + 3 = 11", "math"),
        ("Write a Python function that reverses a linked list.", "code"),
        ("Implement a program that reads n and prints the n-th Fibonacci number.", "code"),
        (
            "Given an array a of n integers, count the inversions.\n\nInput format\nThe first line contains n.\n\n"
            "Output format\nPrint one integer.\n\nConstraints: $1 \\le n \\le 10^5$",
            "code",
        ),
        (
            "You are given a string s.\n\n## Input\nOne line with s.\n\n## Output\nThe answer.\n\n"
            "Sample Input\nabc\nSample Output\n3",
            "code",
        ),
        ("Fix this:\n```python\ndef f(x):\n    return x +\n```", "code"),
        ("Write a C++ program to sort an array in O(n log n).", "code"),
        ("What is the capital of France?", "other"),
        ("Write a haiku about autumn leaves.", "other"),
        ("Summarize the plot of Hamlet.", "other"),
        ("Tell me a joke about 3 cats.", "other"),
        ("Explain how photosynthesis works in 2 paragraphs.", "other"),
    ],
)
def test_guess_kind(text, kind):
    assert guess_kind(text) == kind


def test_build_messages_appends_the_manifest_suffix():
    spec = Catalog().get("vibethinker-3b")
    assert spec is not None
    msgs = build_messages(Problem("Compute 1+1.", "math"), spec)
    assert [m.role for m in msgs] == ["user"]
    assert msgs[0].content == "Compute 1+1.\n\n" + spec.prompt_suffixes["math"]
    assert "\\boxed{}" in msgs[0].content
    code = build_messages(Problem("Write a function.", "code"), spec)[0].content
    assert code.endswith(spec.prompt_suffixes["code"])
    assert build_messages(Problem("Hello?", "other"), spec)[0].content == "Hello?"


def test_build_messages_without_manifest_uses_the_default_suffixes():
    msgs = build_messages(Problem("Compute 1+1.", "math"), None)
    assert msgs[0].content.endswith(DEFAULT_SUFFIXES["math"])


def test_ensure_fits_counts_tokens_against_the_context():
    msgs = [ChatMessage("user", "word " * 100)]
    count = len  # one token per character keeps the arithmetic visible
    assert ensure_fits(msgs, count, 4096) == 500 + 8
    with pytest.raises(BadInputError) as err:
        ensure_fits(msgs, count, 512)
    assert str(err.value) == (
        "the problem is too long: 508 tokens vs limit 384 (a 512-token context, 128 kept for thinking and the answer)"
    )
    assert err.value.exit_code == ExitCode.BAD_INPUT
    assert generation_reserve(65536) == 1024


def test_size_messages_give_exact_numbers(tmp_path):
    path = write(tmp_path, b"x" * 1_000_001)
    with pytest.raises(BadInputError, match=r"1,000,001 bytes \(the limit is 1,000,000 bytes\)"):
        read_problem(path)
    assert read_problem(write(tmp_path, b"x" * 1_000_000)).text == "x" * 1_000_000


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_special_files_are_refused_without_reading(tmp_path, special):
    import os

    path = tmp_path / "p.md"
    if special == "fifo":
        os.mkfifo(path)  # nobody writes: opening it for reading would block forever
        expected = "is a named pipe (FIFO), not a problem file"
    else:
        path = Path(special)
        expected = "is a character device, not a problem file"
    with pytest.raises(BadInputError, match=re.escape(expected)) as err:
        read_problem(path)
    assert err.value.exit_code == ExitCode.BAD_INPUT


def test_closed_stdin_is_one_line():
    import sys

    saved = sys.stdin
    sys.stdin = None  # what Python sets when fd 0 is closed at start-up
    try:
        with pytest.raises(BadInputError, match="stdin is closed: cannot read a problem from it"):
            read_problem("-")
    finally:
        sys.stdin = saved


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("---\nkind: math\nanswer 5\n---\nWhat is 2+3?", "malformed front matter at line 3"),
        ("---\nkind: math\nWhat is 2+3?\n", "malformed front matter at line 3"),
    ],
)
def test_malformed_front_matter_is_warned_about(tmp_path, text, warning):
    problem = read_problem(write(tmp_path, text.encode()))
    assert problem.meta == {}
    assert len(problem.warnings) == 1 and warning in problem.warnings[0]
    assert "sent to the model as problem text" in problem.warnings[0]


@pytest.mark.parametrize(
    "text",
    [
        "---\nkind: math\n---\nWhat is 2+3?",  # real front matter
        "---\nSome prose that follows a rule.\n",  # a horizontal rule, then prose
        "What is 2+3?\n---\nkind: math\n",  # not at the top
    ],
)
def test_no_warning_for_front_matter_or_rules(tmp_path, text):
    assert read_problem(write(tmp_path, text.encode())).warnings == ()


def test_never_closed_front_matter_is_named():
    from vibelocal.problem import malformed_front_matter

    assert malformed_front_matter("---\nkind: math\nanswer: 5\n") == "front matter never closed with `---`"


def test_the_ctx_hint_only_while_the_model_allows_more():
    from vibelocal.problem import ensure_fits
    from vibelocal.types import ChatMessage

    messages = [ChatMessage("user", "word " * 5000)]
    with pytest.raises(BadInputError) as below:
        ensure_fits(messages, lambda t: len(t.split()), 4096, n_ctx_train=32768)
    assert below.value.hint == "shorten it, or raise --ctx"
    with pytest.raises(BadInputError) as capped:
        ensure_fits(messages, lambda t: len(t.split()), 4096, n_ctx_train=4096)
    assert capped.value.hint == "shorten it: 4096 tokens is already the model's trained context"
