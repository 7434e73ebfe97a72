"""LaTeX as Unicode while text streams: release what can be converted now, hold back (boundedly) what cannot."""

from __future__ import annotations

import re

from vibelocal.answers.latex import (
    FENCE_OPEN,
    HOLD_LIMIT,
    Pending,
    Segment,
    Span,
    append_span,
    convert,
    fence_close,
    render_segments,
    split_segments,
)

_RESCAN_MIN = 64
"""A held buffer shorter than this is re-scanned on every chunk; a longer one only once it has grown by a quarter
(or by this much), so a construct that never closes costs amortised constant work per character."""


class UnicodeStream:
    """Feed text as it streams; get back spans as soon as they can be converted without seeing more.

    Text is released at whitespace outside any math region, command argument or inline code; code fences are
    released line by line, untouched. What is held back is bounded by about `HOLD_LIMIT` characters (a run
    without any whitespace waits for its end), each character is scanned a bounded number of times, and where
    the cuts fall depends only on the text, never on how it was chunked, so any chunking gives the same output.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._fence: str | None = None
        self._code_mid_line = False  # inside a fence, part of the current line was already released
        self._line_start = True  # the text released so far ends at the start of a line
        self._held = 0  # length of the buffer when a scan last found nothing to release

    def feed(self, chunk: str) -> list[Span]:
        self._buf += chunk
        out: list[Span] = []
        self._drain(out, eager=False)
        return out

    def _drain(self, out: list[Span], *, eager: bool) -> None:
        """Release what can be released; unless `eager`, a held buffer is only re-scanned on schedule."""
        while True:
            if self._fence is not None:
                if not self._release_code_lines(out):
                    break
                continue
            n = len(self._buf)
            if not eager and _RESCAN_MIN <= n < self._held + max(_RESCAN_MIN, self._held // 4):
                break  # nothing was releasable a moment ago, and not enough arrived since to look again
            segments, pending = split_segments(self._buf, final=False, line_start=self._line_start)
            if pending is not None and pending.what == "fence":
                cut = _next_cut(self._buf, segments, pending, line_start=self._line_start)
                if 0 < cut < pending.at:  # the text before the fence ran past the limit: cut as ever
                    self._release(cut, out, segments)
                    continue
                self._release(pending.at, out, segments)
                nl = self._buf.find("\n")
                if nl < 0:
                    self._held = len(self._buf)
                    break  # the opening line is not complete yet
                append_span(out, Span(self._buf[: nl + 1], "code"))
                self._buf, self._fence, self._line_start = self._buf[nl + 1 :], pending.fence, True
                self._held = 0
                continue
            cut = _next_cut(self._buf, segments, pending, line_start=self._line_start)
            if cut == 0:
                self._held = n
                break
            # release, and look again: after a cut forced by the limit the rest may hold a safe one
            self._release(cut, out, segments)

    def _release(self, cut: int, out: list[Span], segments: list[Segment]) -> None:
        if cut <= 0:
            return
        for span in render_segments(self._buf, segments, cut, line_start=self._line_start):
            append_span(out, span)
        self._line_start = self._buf[cut - 1] == "\n"
        self._buf = self._buf[cut:]
        self._held = 0

    def _release_code_lines(self, out: list[Span]) -> bool:
        assert self._fence is not None
        nl = self._buf.find("\n")
        if nl < 0:
            if len(self._buf) >= HOLD_LIMIT:  # a very long code line goes out in pieces (code is untouched)
                append_span(out, Span(self._buf, "code"))
                self._buf, self._code_mid_line = "", True
            return False
        line, self._buf = self._buf[: nl + 1], self._buf[nl + 1 :]
        append_span(out, Span(line, "code"))
        if not self._code_mid_line and fence_close(line, 0, self._fence) is not None:
            self._fence = None
            self._line_start, self._held = True, 0
        self._code_mid_line = False
        return True

    def flush(self) -> list[Span]:
        """The rest of the text (call once at the end)."""
        out: list[Span] = []
        self._drain(out, eager=True)  # first what a scan would release, as if more text were to come
        rest, self._buf = self._buf, ""
        if self._fence is not None:
            self._fence = None
            append_span(out, Span(rest, "code"))
        else:
            for span in convert(rest, line_start=self._line_start):
                append_span(out, span)
        return out


_CUT_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}\[\]]|\s", re.DOTALL)
"""What matters for a cut in prose: a command name, an escape, an argument bracket, a whitespace character."""


def _prose_cuts(buf: str, segments: list[Segment], limit: int, *, line_start: bool) -> list[int]:
    """Every safe cut before `limit`, in order: just after a whitespace character in prose, with no command
    argument open (a `{` or `[` right after a command name or a closed argument, or any `{` inside one), no
    command whose argument may still follow, and not in the indentation opening a line (a fence may follow).

    One pass, the open arguments tracked as it goes; a bare `{` in prose is text, so it holds nothing back.
    """
    cuts: list[int] = []
    open_args: list[str] = []  # the closers of the command arguments open here, innermost last
    open_at = 0  # where the outermost one opened
    arg_ready = False  # a `{` or `[` here would be a command's argument
    for kind, raw, start, end in segments:
        if kind == "code" and _is_fence(buf, start, line_start=line_start):
            # a stream releases the text before a fence and the fence itself on their own: cuts, whatever is open
            cuts.extend(c for c in (start, end) if 0 < c <= limit)
            open_args, arg_ready = [], False
            continue
        if kind != "prose":
            arg_ready = False
            continue
        last = 0
        for m in _CUT_TOKEN.finditer(raw):
            tok = m.group()
            if open_args and start + m.start() - open_at > HOLD_LIMIT:
                open_args, arg_ready = [], False  # an argument that never closes holds nothing back
            if m.start() > last and not raw[last : m.start()].isspace():
                arg_ready = False  # other text came between: what follows is no argument
            last = m.end()
            if tok[0] == "\\":
                arg_ready = tok[1:2].isalpha()
            elif tok in "{[":
                if arg_ready or (open_args and tok == "{"):
                    open_at = open_at if open_args else start + m.start()
                    open_args.append("}" if tok == "{" else "]")
                arg_ready = False
            elif tok in "}]":
                if open_args and open_args[-1] == tok:
                    open_args.pop()
                    arg_ready = not open_args
            elif not open_args and not arg_ready and start + m.end() <= limit:
                cut = start + m.end()
                after_text = cut >= 2 and buf[cut - 2] not in " \t\n"  # then no indentation, cheaply
                if tok == "\n" or after_text or not _in_indent(buf, cut, line_start=line_start):
                    cuts.append(cut)
    return cuts


def _is_fence(buf: str, at: int, *, line_start: bool) -> bool:
    return (buf[at - 1] == "\n" if at else line_start) and FENCE_OPEN.match(buf, at) is not None


def _in_indent(buf: str, cut: int, *, line_start: bool) -> bool:
    """True when `buf[:cut]` ends in the blank start of a line."""
    line = buf.rfind("\n", 0, cut)
    if line < 0 and not line_start:
        return False
    return buf[line + 1 : cut].strip(" \t") == ""


_SPACE = re.compile(r"\s")


def _next_cut(buf: str, segments: list[Segment], pending: Pending | None, *, line_start: bool) -> int:
    """How much to release: up to the last safe cut; but where the text runs `HOLD_LIMIT` characters past one
    cut without another, only up to the first whitespace past that limit. 0: nothing to release yet."""
    limit = pending.at if pending else len(buf)
    pos = 0
    cuts = _prose_cuts(buf, segments, limit, line_start=line_start)
    if pending is not None and pending.what == "fence":
        cuts.append(pending.at)  # a fence opens a line: the text before it can go
    for cut in cuts:
        forced = _forced_at(buf, pos)
        if forced is not None and cut > forced:
            return forced
        pos = cut
    if pos:
        return pos
    forced = _forced_at(buf, 0)
    return forced if forced is not None and forced <= limit else 0  # never into a construct still open


def _forced_at(buf: str, pos: int) -> int | None:
    m = _SPACE.search(buf, pos + HOLD_LIMIT)
    return None if m is None else m.end()
