"""The shape of a side: lists split outside brackets, sets unpacked, ± expanded, names, chains of constants."""

from __future__ import annotations

import pytest

from vibelocal.answers.sides import MAX_VALUES, Value, constant, read_side, split_top_level, tuple_elements


def texts(side) -> list[str]:
    return [v.text for v in side.values]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("3", ["3"]),
        ("2, 3", ["2", "3"]),
        (r"x = 2 \text{ or } x = 3", ["2", "3"]),
        ("2 and 3", ["2", "3"]),
        (r"\{1, 2\}", ["1", "2"]),
        (r"\left\{ 1, 2 \right\}", ["1", "2"]),
        ("(1, 2)", ["(1, 2)"]),
        ("[1, 2)", ["[1, 2)"]),
        (r"(-\infty, 0) \cup (0, \infty)", [r"(-\infty, 0) \cup (0, \infty)"]),
        (r"\{x \mid x > 0\}", [r"\{x \mid x > 0\}"]),
        (r"1 \pm \sqrt{2}", [r"1 + \sqrt{2}", r"1 - \sqrt{2}"]),
        (r"\frac{-1 \pm \sqrt{13}}{4}", [r"\frac{-1 + \sqrt{13}}{4}", r"\frac{-1 - \sqrt{13}}{4}"]),
        (r"x = 3, x = 1 \pm \sqrt{2}", ["3", r"1 + \sqrt{2}", r"1 - \sqrt{2}"]),
        ("x + y = 5", ["x + y = 5"]),
    ],
)
def test_values(text, values):
    assert texts(read_side(text)) == values


def test_names_and_chains():
    side = read_side(r"x = 6 \times 7 = 42")
    assert side.values == (Value("42", "x"),)
    assert side.links == ((r"6 \times 7", "42"),)
    assert read_side("y_1 = 3").values == (Value("3", "y_1"),)
    assert read_side("2x + 3 = 7").links == ()  # an equation, not a chain
    assert not read_side("3").is_list and read_side(r"\pm 3").is_list


def test_helpers():
    assert split_top_level("f(1, 2), [3, 4]") == ["f(1, 2)", " [3, 4]"]
    assert constant(r"\frac{\sqrt{2}}{\pi}") and not constant("2x") and not constant(" ")
    with pytest.raises(ValueError, match="more than"):
        read_side(", ".join(str(i) for i in range(MAX_VALUES + 1)))


def test_tuple_elements():
    assert tuple_elements("(1, 2)") == ["1", "2"]
    assert tuple_elements(r"\left(1, \frac{1}{2}\right)") == ["1", r"\frac{1}{2}"]
    assert tuple_elements("(1)+(2)") is None
    assert tuple_elements("[1, 2]") is None and tuple_elements("(3)") is None
    assert read_side("x = 2, x = 2").values == (Value("2", "x"),)  # one value, stated twice
