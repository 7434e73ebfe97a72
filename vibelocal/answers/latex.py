"""LaTeX in model output to readable Unicode: spans (text, boxed, code) for whole texts and for streams."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vibelocal.answers.braces import closing_bracket
from vibelocal.answers.latex_blocks import (
    CASES,
    DELIMITER_KINDS,
    LEFT_BLOCK,
    MATRIX_KINDS,
    RIGHT,
    Grid,
    cases_block,
    environment_end,
    framed,
    grid,
    hconcat,
    matrix_block,
    matrix_cells,
    vconcat,
)
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

SpanKind = Literal["text", "boxed", "code", "block"]


@dataclass(frozen=True)
class Span:
    """A piece of rendered text: plain, the content of a `\\boxed{}` (to highlight), untouched code, or a block:
    lines laid out in two dimensions (a matrix, cases), to print on lines of their own, alignment kept."""

    text: str
    kind: SpanKind = "text"


def to_spans(text: str) -> list[Span]:
    """Convert a whole text: math delimiters removed, LaTeX as Unicode, fences and inline code untouched."""
    return convert(text, line_start=True)


def convert(text: str, *, line_start: bool) -> list[Span]:
    """`to_spans` of a piece of a text; `line_start` says whether the piece begins a line."""
    segments, _ = split_segments(text, final=True, line_start=line_start)
    return render_segments(text, segments, len(text), line_start=line_start)


def render_segments(text: str, segments: list[Segment], upto: int, *, line_start: bool) -> list[Span]:
    """The spans of `text[:upto]` from its segments. A segment that `upto` cuts short is read as prose up to it
    (a stream releasing held text that it has waited on long enough)."""
    out: list[Span] = []
    for kind, raw, start, end in segments:
        if start >= upto:
            break
        if end > upto:
            kind, raw = "prose", text[start:upto]
        if kind == "code":
            append_span(out, Span(raw, "code"))
        elif kind == "math":
            for span in _math_spans(raw, text, start, end, line_start=line_start):
                append_span(out, span)
        else:
            for span in _Parser(raw, math=False).parse():
                if span.kind == "boxed" and "\n" in span.text:  # a boxed matrix outside math delimiters
                    span = Span(vconcat([framed(grid(span.text))]), "block")
                append_span(out, span)
    last = segments[-1] if segments else None
    kept = out and out[-1].text[-1:].isspace()
    if (
        last is not None
        and last[0] == "math"
        and last[3] == upto == len(text)
        and text[-1:].isspace()
        and not kept
    ):
        append_span(
            out, Span(text[len(text.rstrip()) :])
        )  # unclosed math to the end keeps the space after it
    return out


def _math_spans(raw: str, text: str, start: int, end: int, *, line_start: bool) -> list[Span]:
    """One math region of `text` (`raw`, at `start`:`end`) as spans; a region holding a matrix or cases becomes one
    block on lines of its own (a line break added before and after it where text shares its line)."""
    spans = _Parser(raw, math=True).parse()
    if any(s.kind == "block" or (s.kind == "boxed" and "\n" in s.text) for s in spans):
        before = text[text.rfind("\n", 0, start) + 1 : start]
        at_line_start = before.strip() == "" and (line_start or "\n" in text[:start])
        block = layout(spans, frame_boxes=True)
        if "\n" not in block:  # a one-row matrix reads inline
            return [Span(block.strip())]
        return [
            *([] if at_line_start else [Span("\n")]),
            Span(block, "block"),
            *([Span("\n")] if text[end : end + 1] not in ("", "\n") else []),
        ]
    spans = [Span(re.sub(r"(?<=\S) {2,}(?=\S)", " ", s.text), s.kind) for s in spans]
    if spans:
        spans[0] = Span(spans[0].text.lstrip(), spans[0].kind)
        spans[-1] = Span(spans[-1].text.rstrip(), spans[-1].kind)
    return spans


def to_unicode(text: str, *, box: tuple[str, str] = ("[", "]")) -> str:
    """`to_spans` flattened to a string; boxed content is wrapped in `box` (e.g. `[42]`)."""
    return "".join(f"{box[0]}{s.text}{box[1]}" if s.kind == "boxed" else s.text for s in to_spans(text))


def math_to_unicode(latex: str) -> str:
    """One math expression without delimiters (e.g. an extracted final answer) as Unicode; boxes unwrapped. A
    matrix or cases comes back as lines of text, aligned."""
    spans = _Parser(latex, math=True).parse()
    if any(s.kind == "block" or "\n" in s.text for s in spans):
        return layout(spans, frame_boxes=False)
    return "".join(s.text for s in spans).strip()


def append_span(out: list[Span], span: Span) -> None:
    if not span.text:
        return
    if out and out[-1].kind == span.kind and span.kind not in ("boxed", "block"):
        out[-1] = Span(out[-1].text + span.text, span.kind)
    else:
        out.append(span)


# --------------------------------------------------------------------------- segmentation

HOLD_LIMIT = 1024
"""How far a construct may reach: math or inline code whose closer is not within this many characters of its
opener (and a command argument still open after this many) reads as plain text. It bounds what a stream holds
back while it waits for a closer, and it is the same for whole texts and streams, so chunking never matters."""

FENCE_OPEN = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})[^\n]*(?:\n|$)")
Segment = tuple[Literal["prose", "math", "code"], str, int, int]
"""(kind, text without delimiters, start, end) where start/end index the source, delimiters included."""


@dataclass(frozen=True)
class Pending:
    """Where an unclosed construct starts, and what it is."""

    at: int
    what: Literal["fence", "other"]
    fence: str = ""


def fence_close(text: str, start: int, fence: str) -> int | None:
    """End index (after its newline) of the line closing `fence`, searching from `start`."""
    pattern = re.compile(rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*(?:\n|$)", re.MULTILINE)
    m = pattern.search(text, start)
    return m.end() if m else None


def _paragraph_end(text: str, start: int) -> int:
    end = text.find("\n\n", start)
    return len(text) if end < 0 else end


def split_segments(
    text: str, *, final: bool, line_start: bool = True
) -> tuple[list[Segment], Pending | None]:
    """Split into prose, math (delimiters removed) and code; unless `final`, report an unclosed construct.

    `line_start`: whether the text begins a line (a code fence opens only at the start of one)."""
    out: list[Segment] = []
    n, i, start = len(text), 0, 0

    def emit(kind: Literal["prose", "math", "code"], a: int, b: int, raw: str | None = None) -> None:
        if b > a:
            out.append((kind, text[a:b] if raw is None else raw, a, b))

    while i < n:
        c = text[i]
        if (text[i - 1] == "\n" if i else line_start) and c in " \t`~" and (m := FENCE_OPEN.match(text, i)):
            close = fence_close(text, m.end(), m.group(1))
            if close is None and not final:
                emit("prose", start, i)
                return out, Pending(i, "fence", m.group(1))
            emit("prose", start, i)
            end = n if close is None else close
            emit("code", i, end)
            i = start = end
            continue
        if c == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            if i + run >= n and not final:  # the run of backticks may grow
                emit("prose", start, i)
                return out, Pending(i, "other")
            para = min(_paragraph_end(text, i), i + HOLD_LIMIT)
            j = text.find("`" * run, i + run, para)
            if j >= 0:
                emit("prose", start, i)
                emit("code", i, j + run)
                i = start = j + run
                continue
            if para == n and not final:
                emit("prose", start, i)
                return out, Pending(i, "other")
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
                return out, Pending(i, "other")
            i += 1  # "$ " is a dollar sign, not math
            continue
        limit = min(_paragraph_end(text, i) if opener == "$" else n, i + HOLD_LIMIT)
        j = _find_closer(text, i + len(opener), closer, limit, inline=opener == "$")
        if j is None:
            if not final and limit == n:
                emit("prose", start, i)
                return out, Pending(i, "other")
            if opener == "$" or opener == "\\(" or limit < n:
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
                    append_span(out, span)
                continue
            self.i += 1
            if c == "{" and (self.math or in_group):
                for span in self.parse(in_group=True):
                    append_span(out, span)
            elif self.math and c in "^_":
                arg = self._arg_text()
                text = script(arg, SUPERSCRIPTS if c == "^" else SUBSCRIPTS, c)
                append_span(out, Span(text))
            elif self.math and c == "~":
                append_span(out, Span(" "))
            elif self.math and c == "&":
                continue
            else:
                append_span(out, Span(c))
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
                arg = self._arg(math=True)
                if any(s.kind == "block" for s in arg):  # a boxed matrix: the box is drawn around the block
                    return [Span(layout(arg, frame_boxes=True), "boxed")]
                return [Span("".join(s.text for s in arg).strip(), "boxed")]
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
        if name == "left" and (block := self._left_block()) is not None:
            return block
        if name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "bigg", "Bigg", "middle"):
            if self.i < len(self.s) and self.s[self.i] == ".":
                self.i += 1
            return []
        if name == "begin":
            env = self._arg_text(math=False).strip()
            rows = self._environment_rows(env)
            if rows is None:
                return []  # any other environment: its content reads inline, `\\\\` as a line break
            grid = cases_block(rows) if env.rstrip("*") in CASES else matrix_block(rows, MATRIX_KINDS[env])
            return [Span(vconcat([grid]), "block")]
        if name == "end":
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

    # -------------------------------------------------------------- matrices and cases

    def _environment_rows(self, env: str) -> list[list[str]] | None:
        """The cells of a matrix or cases environment whose `\\begin{env}` was just read (its `\\end` consumed),
        or None (and nothing consumed) for any other environment or one that is not closed."""
        if env not in MATRIX_KINDS and env.rstrip("*") not in CASES:
            return None
        start = self.i
        if env == "array":
            self._arg_text(math=False)  # the column spec
        body_start = self.i
        end = environment_end(self.s, body_start, env)
        if end is None:
            self.i = start
            return None
        body_end, self.i = end
        return [[_cell_text(cell) for cell in row] for row in matrix_cells(self.s[body_start:body_end])]

    def _left_block(self) -> list[Span] | None:
        """`\\left( \\begin{array}…\\end{array} \\right)`: the array as a matrix with those brackets (`\\left\\{ … \\right.`:
        as cases). None when `\\left` opens anything else; then nothing is consumed."""
        m = LEFT_BLOCK.match(self.s, self.i)
        if m is None or m["delim"] not in DELIMITER_KINDS:
            return None
        start, self.i = self.i, m.end()
        rows = self._environment_rows(m["env"])
        if rows is None:
            self.i = start
            return None
        right = RIGHT.match(self.s, self.i)
        if right is not None:
            self.i = right.end()
        kind = DELIMITER_KINDS[m["delim"]]
        if kind == "B" and right is not None and right["delim"] == ".":
            return [Span(vconcat([cases_block(rows)]), "block")]
        return [Span(vconcat([matrix_block(rows, kind)]), "block")]

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


def _cell_text(cell: str) -> str:
    """One cell as Unicode: a single line, or the lines of a block nested in it."""
    spans = _Parser(cell.strip(), math=True).parse()
    if any(s.kind == "block" or "\n" in s.text for s in spans):
        return layout(spans, frame_boxes=True)
    return re.sub(r"\s{2,}", " ", "".join(s.text for s in spans)).strip()


def layout(spans: list[Span], *, frame_boxes: bool) -> str:
    """Math spans holding a block, laid out in two dimensions: each line of the expression (`\\\\` breaks them)
    is its pieces side by side on one baseline; a boxed block gets a drawn frame (or none: `frame_boxes`)."""
    lines: list[list[Grid]] = [[]]
    for span in spans:
        if span.kind == "block":
            lines[-1].append(span.text.split("\n"))
        elif span.kind == "boxed" and "\n" in span.text:
            body = grid(span.text)
            lines[-1].append(framed(body) if frame_boxes else body)
        else:
            text = span.text if span.kind != "boxed" else f"[{span.text}]"
            first, *rest = text.split("\n")
            lines[-1].append([re.sub(r"(?<=\S) {2,}(?=\S)", " ", first)])
            for more in rest:
                lines.append([[more]])
    grids = [hconcat(line) for line in lines]
    return vconcat(grids).strip("\n")
