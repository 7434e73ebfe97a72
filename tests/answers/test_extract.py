"""Final-answer extraction, table-tested."""

from __future__ import annotations

import pytest

from vibelocal.answers.extract import boxed_contents, code_blocks, extract_final_answer


@pytest.mark.parametrize(
    "text, answer",
    [
        (r"The answer is \boxed{42}.", "42"),
        (r"First \boxed{1}, then \boxed{2}.", "2"),
        (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),
        (r"\boxed{\sqrt{\frac{a}{b}} + {c}}", r"\sqrt{\frac{a}{b}} + {c}"),
        (r"\boxed { 7 }", "7"),
        (r"\fbox{x = 3}", "x = 3"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\boxed{\text{(B)}}", r"\text{(B)}"),
        (r"\boxed 42", None),  # without braces it is not a box
        (r"\boxed{12} and then \boxed{3", "12"),  # the last box was cut off
        (r"\boxed{}", None),
        ("No box here, the answer is 5.", None),
        ("", None),
        ("**Final Answer**\n\\[\n\\boxed{x^2 - 1}\n\\]", "x^2 - 1"),
    ],
)
def test_math_answers(text, answer):
    assert extract_final_answer(text, "math") == answer


@pytest.mark.parametrize(
    "text, answer",
    [
        ("Here:\n```python\nprint(1)\n```\n", "print(1)"),
        ("```\na\n```\ntext\n```cpp\nint main() {}\n```", "int main() {}"),
        ("```python\nx = 1\n\ny = 2\n```", "x = 1\n\ny = 2"),
        ("~~~\nfirst\n~~~", "first"),
        ("````md\n```\ninner\n```\n````", "```\ninner\n```"),
        ("```python\nprint(1)\n```\nThen the cut-off one:\n```python\nprint(", "print(1)"),
        ("```python\nunclosed", None),
        ("no code at all", None),
        ("inline `code` only", None),
        ("```\n\n```", None),
    ],
)
def test_code_answers(text, answer):
    assert extract_final_answer(text, "code") == answer


def test_other_kind_uses_the_box():
    assert extract_final_answer(r"Paris. \boxed{Paris}", "other") == "Paris"
    assert extract_final_answer("Paris.", "other") is None


def test_helpers_list_everything_in_order():
    assert boxed_contents(r"\boxed{1} \fbox{2} \boxed{3") == ["1", "2"]
    assert code_blocks("```py\na\n```\n```\nb\n```") == [("py", "a"), ("", "b")]


def test_turn_record_collects_a_turn():
    from vibelocal.answers.extract import TurnRecord
    from vibelocal.engine.scripted import Script, ScriptedEngine
    from vibelocal.types import ChatMessage, GenerationSettings

    record = TurnRecord()
    engine = ScriptedEngine(Script("one two. three four", "So \\boxed{7}."))
    for event in engine.stream([ChatMessage("user", "q")], GenerationSettings(max_thinking_tokens=2, seed=3)):
        record.add(event)
    assert record.thinking.startswith("one two.") and "limited time" in record.thinking
    assert "three" not in record.thinking  # the cap of 2 fell on a sentence end: wrapped up there
    assert record.answer == "So \\boxed{7}."
    assert record.final_answer("math") == "7"
    assert record.stop_reason == "answered" and record.budget_hit and record.stats.seed == 3
    assert record.notices == ["wrap_up"]


def test_turn_record_joins_its_pieces_once_and_stays_correct_when_read_mid_turn():
    from vibelocal.answers.extract import TurnRecord
    from vibelocal.types import StreamEvent

    record = TurnRecord()
    pieces = [f"t{i} " for i in range(5000)]
    for k, piece in enumerate(pieces):
        record.add(StreamEvent("thinking", text=piece))
        record.add(StreamEvent("answer", text=piece.upper()))
        if k == 2500:
            assert record.thinking == "".join(pieces[: k + 1])  # reading mid-turn is allowed
    assert record.thinking == "".join(pieces)
    assert record.answer == "".join(pieces).upper()
    assert len(record._thinking._pieces) == 1  # joined once, kept
