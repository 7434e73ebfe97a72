"""Problem files: read and validate the text, parse front matter, guess the kind, build the prompt."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from vibelocal.errors import BadInputError
from vibelocal.files import read_capped, read_stdin_capped
from vibelocal.types import ChatMessage, ModelSpec

ProblemKind = Literal["math", "code", "other"]
KINDS: tuple[ProblemKind, ...] = ("math", "code", "other")

MAX_PROBLEM_BYTES = 1_000_000  # 1 MB: far beyond any problem statement, small enough to refuse at once
"""A problem file larger than this is refused before it is read."""

DEFAULT_SUFFIXES: dict[str, str] = {
    "math": "Let's think step by step and output the final answer within \\boxed{}.",
    "code": "Think it through, then give the complete final program in one fenced code block.",
    "other": "",
}
"""Used when the model has no manifest (a bare .gguf path); same wording as the VibeThinker manifest."""

_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Problem:
    """A problem: its text (front matter removed), kind, front-matter fields and where it came from."""

    text: str
    kind: ProblemKind
    meta: dict[str, str] = field(default_factory=dict)
    source: str = "-"
    warnings: tuple[str, ...] = ()
    """What the reader noticed but did not refuse (malformed front matter sent as text)."""


def read_problem(
    source: str | Path,
    *,
    kind: ProblemKind | None = None,
    max_bytes: int = MAX_PROBLEM_BYTES,
    stdin: BinaryIO | None = None,
) -> Problem:
    """Read a problem file ("-" reads stdin); BadInputError (exit 3), one specific line, when unusable.

    The kind comes from `kind`, else the front matter's `kind:`, else `guess_kind`.
    """
    label = "stdin" if str(source) == "-" else str(source)
    raw = _read_stdin(stdin, max_bytes) if str(source) == "-" else _read_file(Path(source), max_bytes)
    text = decode_problem_bytes(raw, label)
    meta, body = split_front_matter(text)
    odd = None if meta else malformed_front_matter(text)
    warnings = (f"{label}: {odd}; it is sent to the model as problem text",) if odd else ()
    body = body.strip("\n")
    if not body.strip():
        if meta:
            raise BadInputError(f"{label}: front matter but no problem text")
        raise BadInputError(f"{label} is blank (only whitespace)")
    chosen = kind or meta.get("kind") or guess_kind(body)
    if chosen not in KINDS:
        raise BadInputError(f"{label}: unknown kind {chosen!r} in front matter; use math, code or other")
    return Problem(text=body, kind=chosen, meta=meta, source=label, warnings=warnings)  # type: ignore[arg-type]


def _read_file(path: Path, max_bytes: int) -> bytes:
    raw = read_capped(path, "problem file", max_bytes)
    if not raw:
        raise BadInputError(f"{path} is empty")
    return raw


def _read_stdin(stdin: BinaryIO | None, max_bytes: int) -> bytes:
    stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
    raw = read_stdin_capped(stream, "a problem", max_bytes)
    if not raw:
        raise BadInputError("stdin is empty: pipe a problem in, or pass a file")
    return raw


def decode_problem_bytes(raw: bytes, label: str = "input") -> str:
    """UTF-8 (with or without a BOM) to text with LF line ends; BadInputError naming the encoding problem."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise BadInputError(f"{label} is {name} text, not UTF-8; convert it (e.g. iconv -t UTF-8)")
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    nul = raw.find(b"\x00")
    if nul >= 0:
        if _looks_like_utf16(raw):
            raise BadInputError(
                f"{label} looks like UTF-16 text without a BOM, not UTF-8; convert it to UTF-8"
            )
        raise BadInputError(f"{label} is binary, not text (NUL byte at offset {nul})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        raise BadInputError(
            f"{label} is not valid UTF-8: invalid byte 0x{bad:02x} at offset {exc.start} "
            "(Latin-1 or Windows-1252? convert it to UTF-8)"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _looks_like_utf16(raw: bytes) -> bool:
    """Mostly-ASCII UTF-16 has a NUL in every other byte."""
    sample = raw[:4096]
    if len(sample) < 4:
        return False
    even = sample[0::2].count(0) / len(sample[0::2])
    odd = sample[1::2].count(0) / len(sample[1::2])
    return max(even, odd) > 0.6 and min(even, odd) < 0.1


_META_LINE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)\s*:\s*(?P<value>.*?)\s*$")


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """`---` / `key: value` lines / `---` (or `...`) at the very top → (meta, rest). Anything else is text."""
    if not text.startswith("---\n"):
        return {}, text
    lines = text.split("\n")
    meta: dict[str, str] = {}
    for i, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return meta, "\n".join(lines[i + 1 :])
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _META_LINE.match(stripped)
        if m is None:
            return {}, text  # not front matter: a horizontal rule followed by prose
        meta[m["key"].lower()] = _unquote(m["value"])
    return {}, text  # never closed: a horizontal rule


def malformed_front_matter(text: str) -> str | None:
    """Why text that opens like front matter (`---`, then `key: value` lines) is not front matter, or None.

    A `---` followed by prose is a horizontal rule and None; only a block with at least one `key: value`
    line that then breaks or never closes is reported.
    """
    if not text.startswith("---\n"):
        return None
    keys = 0
    for number, line in enumerate(text.split("\n")[1:], start=2):
        if line.rstrip() in ("---", "..."):
            return None
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if _META_LINE.match(stripped) is None:
            return f"malformed front matter at line {number} (not `key: value`)" if keys else None
        keys += 1
    return "front matter never closed with `---`" if keys else None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


# --------------------------------------------------------------------------- kind guessing

_CODE_SIGNALS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p, re.IGNORECASE | re.MULTILINE), w)
    for p, w in (
        (r"^\s*(```|~~~)", 3),
        (
            r"\b(write|implement|code|create)\b[^.\n]{0,40}\b(program|function|script|class|method|solution in)\b",
            4,
        ),
        (r"\b(python|c\+\+|java(script)?|rust|golang|typescript|kotlin|haskell)\b", 2),
        (r"^\s*#*\s*(input|output)( format)?\s*:?\s*$", 3),
        (r"\b(input|output) format\b", 3),
        (r"\b(sample|example) (input|output)\b", 3),
        (r"\bconstraints?\s*:", 2),
        (r"\btime limit\b|\bmemory limit\b", 3),
        (r"\b(stdin|stdout|standard (input|output))\b", 3),
        (r"\b(array|string|integers?) [a-z]\b|\btest cases?\b|\bqueries\b", 1),
        (r"\b(def|return|print|#include|public static|fn main)\b", 1),
        (r"\b(complexity|algorithm|O\(n( log n)?\))", 1),
    )
)

_MATH_SIGNALS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(p, re.IGNORECASE | re.MULTILINE), w)
    for p, w in (
        (
            r"\\(frac|sqrt|sum|prod|int|cdot|times|le|ge|leq|geq|pi|alpha|theta|binom|boxed|angle|triangle)\b",
            3,
        ),
        (r"\$[^$\n]+\$|\\\(|\\\[", 2),
        (r"\b(find|compute|calculate|evaluate|prove|show that|determine|simplify|solve for)\b", 2),
        (r"\b(how many|what is the (value|sum|product|remainder|probability|area|smallest|largest))\b", 2),
        (
            r"\b(integers?|primes?|real numbers?|polynomials?|equations?|triangles?|circles?|probability|"
            r"remainder|divisible|digits?|sequences?|function f|derivative|integral|matri(x|ces)|modulo|area|"
            r"perimeter|volume|angles?)\b",
            1,
        ),
        (r"[a-z0-9)]\s*[\^=<>≤≥]\s*[a-z0-9(\\-]", 1),
        (r"\d", 1),
    )
)


def _score(text: str, signals: tuple[tuple[re.Pattern[str], int], ...]) -> int:
    return sum(weight for pattern, weight in signals if pattern.search(text))


def guess_kind(text: str) -> ProblemKind:
    """`code` for programming tasks, `math` for math problems, `other` for the rest (a heuristic)."""
    code = _score(text, _CODE_SIGNALS)
    math = _score(text, _MATH_SIGNALS)
    if code >= 4 and code >= math - 2:
        return "code"
    if math >= 2:
        return "math"
    if code >= 3:
        return "code"
    return "other"


def build_messages(problem: Problem, spec: ModelSpec | None) -> list[ChatMessage]:
    """The problem as one user message, with the manifest's instruction for its kind appended."""
    suffixes = spec.prompt_suffixes if spec is not None and spec.prompt_suffixes else DEFAULT_SUFFIXES
    suffix = suffixes.get(problem.kind, "")
    content = f"{problem.text}\n\n{suffix}" if suffix else problem.text
    return [ChatMessage("user", content)]  # the manifest's system prompt is added by prompt.history


MESSAGE_OVERHEAD_TOKENS = 8
"""Chat-template tokens around each message (role header, end marker)."""


def generation_reserve(n_ctx: int) -> int:
    """Tokens a prompt must leave free in the context for thinking and the answer."""
    return min(1024, n_ctx // 4)


def ensure_fits(
    messages: Sequence[ChatMessage],
    count_tokens: Callable[[str], int],
    n_ctx: int,
    n_ctx_train: int | None = None,
) -> int:
    """The prompt's token count; BadInputError (exit 3) when it leaves too little context to think in.

    The hint offers a larger --ctx only while the model's trained context (`n_ctx_train`) allows one.
    """
    tokens = sum(count_tokens(m.content) + MESSAGE_OVERHEAD_TOKENS for m in messages)
    limit = n_ctx - generation_reserve(n_ctx)
    if tokens > limit:
        raise BadInputError(
            f"the problem is too long: {tokens} tokens vs limit {limit} "
            f"(a {n_ctx}-token context, {n_ctx - limit} kept for thinking and the answer)",
            hint="shorten it, or raise --ctx"
            if not n_ctx_train or n_ctx < n_ctx_train
            else f"shorten it: {n_ctx} tokens is already the model's trained context",
        )
    return tokens
