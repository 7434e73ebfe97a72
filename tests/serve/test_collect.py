"""Stop strings: text that could begin one is held back; the text before the first match is kept."""

from __future__ import annotations

import pytest

from vibelocal.serve.collect import StopFilter


@pytest.mark.parametrize(
    ("stops", "chunks", "sent", "hit"),
    [
        ((), ["ab", "cd"], "abcd", False),
        (("END",), ["abc", "dEN", "Dxyz"], "abcd", True),
        (("END",), ["abE", "Nope"], "abENope", False),
        (("\n", "."), ["one two", ". three"], "one two", True),
        (("xyz",), ["x", "y", "z"], "", True),
        (("ab", "b"), ["cab"], "c", True),
        (("END",), ["EN"], "EN", False),
    ],
)
def test_stop_filter(stops, chunks, sent, hit) -> None:
    f = StopFilter(stops)
    out = "".join(f.feed(c) for c in chunks)
    out += f.flush()
    assert out == sent
    assert f.hit is hit


def test_nothing_passes_after_a_stop() -> None:
    f = StopFilter(("!",))
    assert f.feed("hi! there") == "hi"
    assert f.feed("more") == ""
    assert f.flush() == ""
