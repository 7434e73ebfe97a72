"""Two-dimensional LaTeX for a terminal: matrices and cases as aligned blocks of lines, and laying a block out
next to the text around it (`A = ⎛1  2⎞` with the text on the block's middle line)."""

from __future__ import annotations

import re
import unicodedata

Grid = list[str]
"""A block of text: its lines, all padded to the same width."""

BRACKETS: dict[str, tuple[str, str, str, str, str, str, str, str]] = {
    # one row: left, right; taller: top-left, top-right, middle-left, middle-right, bottom-left, bottom-right
    "p": ("(", ")", "⎛", "⎞", "⎜", "⎟", "⎝", "⎠"),
    "b": ("[", "]", "⎡", "⎤", "⎢", "⎥", "⎣", "⎦"),
    "v": ("|", "|", "│", "│", "│", "│", "│", "│"),
    "V": ("‖", "‖", "‖", "‖", "‖", "‖", "‖", "‖"),
}
"""Matrix brackets by kind: p (pmatrix), b (bmatrix), v (vmatrix), V (Vmatrix); B (Bmatrix) and cases use braces."""

MATRIX_KINDS: dict[str, str] = {
    "matrix": "", "smallmatrix": "", "array": "", "pmatrix": "p", "bmatrix": "b", "vmatrix": "v",
    "Vmatrix": "V", "Bmatrix": "B",
}  # fmt: skip
"""Environments laid out as matrices, and the brackets each gets ("" none)."""

CASES = frozenset({"cases", "dcases", "rcases"})

DELIMITER_KINDS: dict[str, str] = {
    "(": "p",
    "[": "b",
    "|": "v",
    "\\|": "V",
    "\\Vert": "V",
    "\\{": "B",
    "\\lbrace": "B",
    "\\vert": "v",
    ".": "",
}
"""`\\left` delimiters around an `array` or `matrix`, as bracket kinds."""


def width(text: str) -> int:
    """Terminal columns of one line (combining marks take none)."""
    return sum(0 if unicodedata.combining(ch) else 1 for ch in text)


def _pad(text: str, cols: int, align: str) -> str:
    gap = cols - width(text)
    if align == "l":
        return text + " " * gap
    if align == "r":
        return " " * gap + text
    return " " * (gap // 2) + text + " " * (gap - gap // 2)


def grid(text: str) -> Grid:
    lines = text.split("\n")
    cols = max(width(line) for line in lines)
    return [_pad(line, cols, "l") for line in lines]


def table(rows: list[list[str]], *, align: str, gap: int = 2) -> Grid:
    """Cells (each possibly several lines) in aligned columns: `c`entred, `l`eft or `r`ight."""
    ncols = max(len(r) for r in rows)
    cells = [[grid(c) for c in r] + [[""]] * (ncols - len(r)) for r in rows]
    cols = [max(width(c[0]) for c in (r[k] for r in cells)) for k in range(ncols)]
    out: Grid = []
    for row in cells:
        height = max(len(c) for c in row)
        for k in range(height):
            parts = [_pad(c[k] if k < len(c) else "", cols[j], align) for j, c in enumerate(row)]
            out.append((" " * gap).join(parts))
    return [_pad(line, max(width(x) for x in out), "l") for line in out] if out else [""]


def bracketed(body: Grid, kind: str) -> Grid:
    """`body` between matrix brackets of `kind` (see BRACKETS; "B" braces, "" none)."""
    if kind == "":
        return body
    if kind == "B":
        return hconcat([brace(len(body), left=True), [" " + line + " " for line in body], brace(len(body))])
    one_l, one_r, tl, tr, ml, mr, bl, br = BRACKETS[kind]
    if len(body) == 1:
        return [f"{one_l} {body[0]} {one_r}"]
    out = []
    for k, line in enumerate(body):
        left, right = (tl, tr) if k == 0 else (bl, br) if k == len(body) - 1 else (ml, mr)
        out.append(f"{left} {line} {right}")
    return out


def brace(height: int, *, left: bool = False) -> Grid:
    """A curly brace `height` lines tall: ⎧ ⎨ ⎩ (⎫ ⎬ ⎭ on the right), ⎪ between."""
    top, mid, bottom, bar = ("⎧", "⎨", "⎩", "⎪") if left else ("⎫", "⎬", "⎭", "⎪")
    if height == 1:
        return ["{" if left else "}"]
    out = [bar] * height
    out[0], out[-1] = top, bottom
    if height >= 3:
        out[height // 2] = mid
    return out


def cases_block(rows: list[list[str]]) -> Grid:
    """`cases`: values and conditions in left-aligned columns behind a tall left brace (three lines at least, so
    the brace keeps its point)."""
    body = table(rows, align="l")
    if len(body) == 2:
        body = [body[0], " " * width(body[0]), body[1]]
    return hconcat([brace(len(body), left=True), [" " + line for line in body]])


def matrix_block(rows: list[list[str]], kind: str) -> Grid:
    return bracketed(table(rows, align="c"), kind)


def framed(body: Grid) -> Grid:
    """A box drawn around a block (a boxed matrix): light corners and rules, unlike any matrix bracket."""
    cols = max(width(line) for line in body)
    return [
        "┌" + "─" * (cols + 2) + "┐",
        *(f"│ {_pad(x, cols, 'l')} │" for x in body),
        "└" + "─" * (cols + 2) + "┘",
    ]


def hconcat(grids: list[Grid]) -> Grid:
    """Grids side by side, their middle lines on one baseline (a single line of text sits on it)."""
    grids = [g for g in grids if g and any(g)]
    if not grids:
        return [""]
    base = max((len(g) - 1) // 2 for g in grids)
    tops = [base - (len(g) - 1) // 2 for g in grids]
    height = max(t + len(g) for t, g in zip(tops, grids, strict=True))
    lines = [""] * height
    for top, g in zip(tops, grids, strict=True):
        cols = max(width(x) for x in g)
        for k in range(height):
            inside = top <= k < top + len(g)
            lines[k] += _pad(g[k - top], cols, "l") if inside else " " * cols
    return lines


def vconcat(grids: list[Grid]) -> str:
    """Grids one under the other, as text with trailing spaces removed."""
    return "\n".join(line.rstrip() for g in grids for line in g)


# --------------------------------------------------------------------------- reading environments

LEFT_BLOCK = re.compile(r"\s*(?P<delim>\\[A-Za-z]+|\\.|[^\s\\])\s*\\begin\s*\{(?P<env>array|matrix)\}")
RIGHT = re.compile(r"\s*\\right\s*(?P<delim>\\[A-Za-z]+|\\.|[^\s\\])")
_ENV_TOKEN = re.compile(r"\\(begin|end)\s*\{([^{}]*)\}")
_CELL_TOKEN = re.compile(r"\\begin(?![A-Za-z])|\\end(?![A-Za-z])|\\\\(?:\s*\[[^\]]*\])?|\\.|[{}&]", re.DOTALL)


def environment_end(text: str, start: int, env: str) -> tuple[int, int] | None:
    """(where the body ends, where the matching `\\end{env}` ends), nested environments of that name skipped."""
    depth = 1
    for m in _ENV_TOKEN.finditer(text, start):
        if m[2].strip() != env:
            continue
        depth += 1 if m[1] == "begin" else -1
        if depth == 0:
            return m.start(), m.end()
    return None


def matrix_cells(body: str) -> list[list[str]]:
    """A matrix body split at `&` and `\\\\` outside any group or nested environment; a last empty row dropped."""
    rows: list[list[str]] = []
    row: list[str] = []
    depth, at = 0, 0
    for m in _CELL_TOKEN.finditer(body):
        tok = m.group()
        if tok in ("{", "\\begin"):
            depth += 1
        elif tok in ("}", "\\end"):
            depth = max(0, depth - 1)
        elif depth == 0 and (tok == "&" or tok.startswith("\\\\")):
            row.append(body[at : m.start()])
            at = m.end()
            if tok != "&":
                rows.append(row)
                row = []
    row.append(body[at:])
    if any(cell.strip() for cell in row) or not rows:
        rows.append(row)
    return rows
