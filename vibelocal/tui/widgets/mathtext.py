"""Answer text as Markdown with its LaTeX shown as Unicode (vibelocal.answers.latex), whole or streamed."""

from __future__ import annotations

from vibelocal.answers.latex import Span, to_spans
from vibelocal.answers.latex_stream import UnicodeStream


def spans_markdown(spans: list[Span]) -> str:
    """Spans back to Markdown: text as is, code untouched, a boxed final answer in bold, a block (a matrix, cases)
    as a code block so that its lines stay aligned."""
    out: list[str] = []
    for span in spans:
        if span.kind == "block":
            out.append(f"```\n{span.text}\n```")
        elif span.kind == "boxed":
            out.append(f"**{span.text.strip()}**" if span.text.strip() else "")
        else:
            out.append(span.text)
    return "".join(out)


def answer_markdown(text: str) -> str:
    """A complete answer, converted."""
    return spans_markdown(to_spans(text))


class MathStream:
    """Feed raw answer text as it streams; get back converted Markdown that is safe to append now."""

    def __init__(self) -> None:
        self._stream = UnicodeStream()

    def feed(self, text: str) -> str:
        return spans_markdown(self._stream.feed(text))

    def flush(self) -> str:
        return spans_markdown(self._stream.flush())
