"""LaTeX in model output to readable Unicode: spans (text, boxed, code) for whole texts and for streams."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vibelocal.answers.braces import closing_bracket, open_braces
from vibelocal.answers.latex_tables import (
    ACCENTS,
    BLACKBOARD,
    FONT_COMMANDS,
    FUNCTIONS,
    IGNORED,
    SUBSCRIPTS,
    SUPERSCRIPTS,
    SYMBOLS,
    VULGAR_FRACTIONS,
)

SpanKind = Literal["text", "boxed", "code"]


@dataclass(frozen=True)
class Span:
    """A piece of rendered text: plain, the content of a `\\boxed{}` (to highlight), or untouched code."""

    text: str
    kind: SpanKind = "text"


def to_spans(text: str) -> list[Span]:
    """Convert a whole text: math delimiters removed, LaTeX as Unicode, fences and inline code untouched."""
    segments, _ = _segments(text, final=True)
    out: list[Span] = []
    for kind, raw, _, _ in segments:
        if kind == "code":
            _append(out, Span(raw, "code"))
        elif kind == "math":
            spans = [
                Span(re.sub(r"(?<=\S) {2,}(?=\S)", " ", s.text), s.kind)
                for s in _Parser(raw, math=True).parse()
            ]
            if spans:
                spans[0] = Span(spans[0].text.lstrip(), spans[0].kind)
                spans[-1] = Span(spans[-1].text.rstrip(), spans[-1].kind)
            for span in spans:
                _append(out, span)
        else:
            for span in _Parser(raw, math=False).parse():
                _append(out, span)
    return out


def to_unicode(text: str, *, box: tuple[str, str] = ("[", "]")) -> str:
    """`to_spans` flattened to a string; boxed content is wrapped in `box` (e.g. `[42]`)."""
    return "".join(f"{box[0]}{s.text}{box[1]}" if s.kind == "boxed" else s.text for s in to_spans(text))


def math_to_unicode(latex: str) -> str:
    """One math expression without delimiters (e.g. an extracted final answer) as Unicode; boxes unwrapped."""
    return "".join(s.text for s in _Parser(latex, math=True).parse()).strip()


def _append(out: list[Span], span: Span) -> None:
    if not span.text:
        return
    if out and out[-1].kind == span.kind and span.kind != "boxed":
        out[-1] = Span(out[-1].text + span.text, span.kind)
    else:
        out.append(span)


# --------------------------------------------------------------------------- segmentation

_FENCE_OPEN = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})[^\n]*(?:\n|$)")
Segment = tuple[Literal["prose", "math", "code"], str, int, int]
"""(kind, text without delimiters, start, end) where start/end index the source, delimiters included."""


@dataclass(frozen=True)
class _Pending:
    """Where an unclosed construct starts, and what it is."""

    at: int
    what: Literal["fence", "other"]
    fence: str = ""


def _fence_close(text: str, start: int, fence: str) -> int | None:
    """End index (after its newline) of the line closing `fence`, searching from `start`."""
    pattern = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*(?:\n|$)", re.MULTILINE)
    m = pattern.search(text, start)
    return m.end() if m else None


def _paragraph_end(text: str, start: int) -> int:
    end = text.find("\n\n", start)
    return len(text) if end < 0 else end


def _segments(text: str, *, final: bool) -> tuple[list[Segment], _Pending | None]:
    """Split into prose, math (delimiters removed) and code; unless `final`, report an unclosed construct."""
    out: list[Segment] = []
    n, i, start = len(text), 0, 0

    def emit(kind: Literal["prose", "math", "code"], a: int, b: int, raw: str | None = None) -> None:
        if b > a:
            out.append((kind, text[a:b] if raw is None else raw, a, b))

    while i < n:
        c = text[i]
        if (i == 0 or text[i - 1] == "\n") and c in " \t`~" and (m := _FENCE_OPEN.match(text, i)):
            close = _fence_close(text, m.end(), m.group(1))
            if close is None and not final:
                emit("prose", start, i)
                return out, _Pending(i, "fence", m.group(1))
            emit("prose", start, i)
            end = n if close is None else close
            emit("code", i, end)
            i = start = end
            continue
        if c == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            para = _paragraph_end(text, i)
            j = text.find("`" * run, i + run, para)
            if j >= 0:
                emit("prose", start, i)
                emit("code", i, j + run)
                i = start = j + run
                continue
            if para == n and not final:
                emit("prose", start, i)
                return out, _Pending(i, "other")
            i += run
            continue
        if c == "\\" and i + 1 < n and text[i + 1] in "$\\":
            i += 2  # an escaped dollar or a line break, not a delimiter
            continue
        opener = closer = None
        if text.startswith("$$", i):
            opener, closer = "$$", "$$"
        elif c == "$":
            opener, closer = "$", "$"
        elif text.startswith("\\[", i):
            opener, closer = "\\[", "\\]"
        elif text.startswith("\\(", i):
            opener, closer = "\\(", "\\)"
        if opener is None:
            i += 1
            continue
        if opener == "$" and (i + 1 >= n or text[i + 1].isspace()):
            if i + 1 >= n and not final:
                emit("prose", start, i)
                return out, _Pending(i, "other")
            i += 1  # "$ " is a dollar sign, not math
            continue
        limit = _paragraph_end(text, i) if opener == "$" else n
        j = _find_closer(text, i + len(opener), closer, limit, inline=opener == "$")
        if j is None:
            if not final and limit == n:
                emit("prose", start, i)
                return out, _Pending(i, "other")
            if opener == "$" or opener == "\\(":
                i += len(opener)
                continue
            j = n  # unclosed display math at the end: math to the end
        emit("prose", start, i)
        inner = text[i + len(opener) : j]
        end = min(n, j + len(closer))
        emit("math", i, end, inner.strip() if opener in ("$$", "\\[") else inner)
        i = start = end
    emit("prose", start, n)
    return out, None


def _find_closer(text: str, start: int, closer: str, limit: int, *, inline: bool) -> int | None:
    j = start
    while True:
        j = text.find(closer, j, limit)
        if j < 0:
            return None
        if text[j - 1] == "\\" and closer == "$":
            j += 1
            continue
        if inline:
            after = text[j + 1] if j + 1 < len(text) else ""
            if text[j - 1].isspace() or after.isdigit():
                j += 1
                continue
        return j


# --------------------------------------------------------------------------- the LaTeX parser


def _simple(text: str) -> bool:
    """True when `text` needs no parentheses next to a fraction bar or root."""
    return bool(text) and not re.search(r"[\s+\-−=<>±∓×÷·*/,]", text)


def script(text: str, table: dict[str, str], mark: str) -> str:
    """x² style when every character has a super/subscript form, else `^(…)` / `_(…)`."""
    compact = re.sub(r"\s+", "", text)
    if compact and all(ch in table for ch in compact):
        return "".join(table[ch] for ch in compact)
    return f"{mark}{compact}" if len(compact) == 1 else f"{mark}({compact})"


class _Parser:
    """A small recursive-descent reader of LaTeX math (or prose with LaTeX commands) producing spans."""

    def __init__(self, source: str, *, math: bool) -> None:
        self.s = source
        self.i = 0
        self.math = math

    def parse(self, *, in_group: bool = False) -> list[Span]:
        out: list[Span] = []
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "}" and in_group:
                self.i += 1
                return out
            if c == "\\":
                for span in self._command():
                    _append(out, span)
                continue
            self.i += 1
            if c == "{" and (self.math or in_group):
                for span in self.parse(in_group=True):
                    _append(out, span)
            elif self.math and c in "^_":
                arg = self._arg_text()
                text = script(arg, SUPERSCRIPTS if c == "^" else SUBSCRIPTS, c)
                _append(out, Span(text))
            elif self.math and c == "~":
                _append(out, Span(" "))
            elif self.math and c == "&":
                continue
            else:
                _append(out, Span(c))
        return out

    # -------------------------------------------------------------- arguments

    def _skip_spaces(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\n":
            self.i += 1

    def _arg(self, *, math: bool | None = None) -> list[Span]:
        """The next argument: a {group}, one command, or one character."""
        self._skip_spaces()
        if self.i >= len(self.s):
            return []
        saved, self.math = self.math, self.math if math is None else math
        try:
            c = self.s[self.i]
            if c == "{":
                self.i += 1
                return self.parse(in_group=True)
            if c == "\\":
                return self._command()
            self.i += 1
            return [Span(c)]
        finally:
            self.math = saved

    def _arg_text(self, *, math: bool | None = None) -> str:
        return "".join(s.text for s in self._arg(math=math))

    def _optional(self) -> str | None:
        self._skip_spaces()
        if self.i < len(self.s) and self.s[self.i] == "[":
            end = self.s.find("]", self.i)
            if end > 0:
                inner = self.s[self.i + 1 : end]
                self.i = end + 1
                return "".join(s.text for s in _Parser(inner, math=True).parse())
        return None

    def _name(self) -> str:
        """Read `\\name` (letters) or `\\c` (one other character); self.i is at the backslash."""
        m = re.compile(r"\\([A-Za-z]+\*?|.)", re.DOTALL).match(self.s, self.i)
        if m is None:  # a lone trailing backslash
            self.i += 1
            return ""
        self.i = m.end()
        return m.group(1)

    # -------------------------------------------------------------- commands

    def _command(self) -> list[Span]:
        start = self.i
        name = self._name().rstrip("*")
        if name in ("boxed", "fbox"):
            self._skip_spaces()
            if self.i < len(self.s) and self.s[self.i] == "{":
                return [Span("".join(s.text for s in self._arg(math=True)).strip(), "boxed")]
            return []
        if name in SYMBOLS:
            return [Span(SYMBOLS[name])]
        if name in FUNCTIONS:
            return [Span(name)]
        if name in IGNORED:
            return []
        if name in FONT_COMMANDS:
            return self._arg(math=FONT_COMMANDS[name])
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            return [Span(self._fraction(self._arg_text(), self._arg_text()))]
        if name in ("binom", "dbinom", "tbinom"):
            return [Span(f"C({self._arg_text()}, {self._arg_text()})")]
        if name == "sqrt":
            index = self._optional()
            arg = self._arg_text()
            root = {None: "√", "2": "√", "3": "∛", "4": "∜"}.get(index) or script(
                index or "", SUPERSCRIPTS, "^"
            ) + "√"
            return [Span(root + (arg if _simple(arg) or len(arg) <= 1 else f"({arg})"))]
        if name in ("mathbb", "Bbb", "mathbbm"):
            return [Span("".join(BLACKBOARD.get(ch, ch) for ch in self._arg_text()))]
        if name in ACCENTS:
            arg, mark = self._arg_text(), ACCENTS[name]
            if name in ("overline", "bar"):
                return [Span("".join(ch + mark if not ch.isspace() else ch for ch in arg))]
            return [Span(arg + mark)]
        if name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "bigg", "Bigg", "middle"):
            if self.i < len(self.s) and self.s[self.i] == ".":
                self.i += 1
            return []
        if name in ("begin", "end"):
            self._arg_text(math=False)
            return []
        if name == "not":
            nxt = self._arg_text()
            negated = {"=": "≠", "∈": "∉", "⊂": "⊄", "⊆": "⊈", "≡": "≢", "|": "∤"}
            return [Span(negated.get(nxt, nxt + "\u0338"))]
        if name == "pmod":
            return [Span(f" (mod {self._arg_text()})")]
        if name in ("text", "textrm", "mbox", "textnormal", "operatorname"):
            return self._arg(math=False)
        if name == "\\":
            return [Span("\n")]
        if len(name) == 1 and not name.isalpha():
            return [Span({",": " ", ":": " ", ";": " ", " ": " ", "!": ""}.get(name, name))]
        while self.i < len(self.s) and self.s[self.i] == "{":  # unknown: left as written, with its arguments
            close = closing_bracket(self.s, self.i)
            self.i = len(self.s) if close is None else close + 1
        return [Span(self.s[start : self.i])]

    def _fraction(self, num: str, den: str) -> str:
        num, den = num.strip(), den.strip()
        if (num, den) in VULGAR_FRACTIONS:
            text = VULGAR_FRACTIONS[(num, den)]
        else:
            text = f"{num if _simple(num) else f'({num})'}/{den if _simple(den) else f'({den})'}"
        after = self.s[self.i] if self.i < len(self.s) else ""
        if len(text) > 1 and after and (after.isalnum() or after in "({\\"):
            return f"({text})"
        return text


# --------------------------------------------------------------------------- streaming


class UnicodeStream:
    """Feed text as it streams; get back spans as soon as they can be converted without seeing more.

    Text is released at whitespace outside any math region, command argument or inline code; code fences are
    released line by line, untouched.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._fence: str | None = None

    def feed(self, chunk: str) -> list[Span]:
        self._buf += chunk
        out: list[Span] = []
        while True:
            if self._fence is not None:
                if not self._release_code_lines(out):
                    break
                continue
            segments, pending = _segments(self._buf, final=False)
            if pending is not None and pending.what == "fence":
                for span in to_spans(self._buf[: pending.at]):
                    _append(out, span)
                nl = self._buf.find("\n", pending.at)
                if nl < 0:
                    self._buf = self._buf[pending.at :]
                    break  # the opening line is not complete yet
                _append(out, Span(self._buf[pending.at : nl + 1], "code"))
                self._buf, self._fence = self._buf[nl + 1 :], pending.fence
                continue
            cut = _safe_cut(self._buf, segments, pending)
            if cut > 0:
                for span in to_spans(self._buf[:cut]):
                    _append(out, span)
                self._buf = self._buf[cut:]
            break
        return out

    def _release_code_lines(self, out: list[Span]) -> bool:
        assert self._fence is not None
        nl = self._buf.find("\n")
        if nl < 0:
            return False
        line, self._buf = self._buf[: nl + 1], self._buf[nl + 1 :]
        _append(out, Span(line, "code"))
        if _fence_close(line, 0, self._fence) is not None:
            self._fence = None
        return True

    def flush(self) -> list[Span]:
        """The rest of the text (call once at the end)."""
        rest, self._buf = self._buf, ""
        if self._fence is not None:
            self._fence = None
            return [Span(rest, "code")] if rest else []
        return to_spans(rest)


_TRAILING_COMMAND = re.compile(r"\\[A-Za-z]+\s*$")


def _safe_cut(buf: str, segments: list[Segment], pending: _Pending | None) -> int:
    """The largest prefix length that ends in whitespace inside prose and leaves no command argument open."""
    limit = pending.at if pending else len(buf)
    candidates: list[int] = []
    for kind, raw, start, end in segments:
        if kind == "prose":
            candidates.extend(
                start + k + 1 for k, ch in enumerate(raw) if ch.isspace() and start + k + 1 <= limit
            )
        elif end <= limit:
            candidates.append(end)
    for cut in reversed(candidates[-8:]):
        prose = "".join(
            buf[start : min(end, cut)] for kind, _, start, end in segments if kind == "prose" and start < cut
        )
        if open_braces(prose) == 0 and not _TRAILING_COMMAND.search(buf[:cut]):
            return cut
    return 0
