"""Pilot tests of the Tutor screen with a scripted engine: hidden solve, checked answers, filtered hints, reveal."""

from __future__ import annotations

import pytest
from textual.app import App
from tui_helpers import wait_for

from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.paths import get_paths
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.screens.tutor import TutorScreen
from vibelocal.tui.widgets.prompt import PromptInput
from vibelocal.tutor.lesson import TUTOR_SYSTEM
from vibelocal.tutor.store import TutorStore

pytestmark = pytest.mark.anyio
SIZE = (100, 34)
SECRET = "SECRET-THINKING: rows times eggs per row."
SOLUTION = "Six rows of seven eggs: $6 \\times 7 = 42$, so \\boxed{42}."
PROBLEM = "A box holds 6 rows of 7 eggs. How many eggs are in the box?"


class TutorScript:
    """Solves with SOLUTION; the first hint leaks the answer, later ones do not."""

    def __init__(self) -> None:
        self.hints = 0

    def __call__(self, messages) -> Script:
        if messages[0].content == TUTOR_SYSTEM:
            self.hints += 1
            text = (
                "It is forty-two, i.e. $\\frac{84}{2}$."
                if self.hints == 1
                else "Count the eggs in one row first."
            )
            return Script(thinking=SECRET, answer=text)
        return Script(thinking=SECRET, answer=SOLUTION)


class Host(App[None]):
    def __init__(self, screen: TutorScreen) -> None:
        super().__init__()
        self.tutor_screen = screen

    def on_mount(self) -> None:
        self.push_screen(self.tutor_screen)


def everything_shown(screen: TutorScreen) -> str:
    status = str(screen.query_one("#tutor-status").render())
    return "\n".join([*screen.entries(), status])


async def type_in(pilot, screen: TutorScreen, text: str) -> None:
    screen.input.focus()
    await pilot.press(*text, "enter")


async def test_work_a_problem_with_hints_and_exact_checking(make_session):
    engine = ScriptedEngine(TutorScript(), tokens_per_s=2000)
    screen = TutorScreen(make_session(engine), f"---\nanswer: 42\n---\n{PROBLEM}")
    async with Host(screen).run_test(size=SIZE) as pilot:
        await wait_for(
            pilot, lambda: screen.tutor is not None and screen.tutor.phase == "working" and not screen.busy
        )
        assert str(screen.query_one("#tutor-problem").render()) == PROBLEM
        assert not any("not checked by a person" in e for e in screen.entries())

        await type_in(pilot, screen, "41")
        await wait_for(pilot, lambda: any("41: not yet" in e for e in screen.entries()))

        await pilot.press("f2")
        await wait_for(pilot, lambda: any(e.startswith("Hint 1") for e in screen.entries()))
        hint = next(e for e in screen.entries() if e.startswith("Hint 1"))
        assert (
            hint == "Hint 1 (what to notice): Count the eggs in one row first."
        )  # the leaky one was regenerated
        before = everything_shown(screen)
        assert "42" not in before and "forty" not in before and "84" not in before
        assert "SECRET" not in before

        await type_in(pilot, screen, "6 \\times 7")
        await wait_for(pilot, lambda: any("correct!" in e for e in screen.entries()))

        await pilot.press("f5")
        await wait_for(pilot, lambda: any(e.startswith("Worked solution") for e in screen.entries()))
        shown = everything_shown(screen)
        assert "6 × 7 = 42, so [42]." in shown and "SECRET" not in shown  # LaTeX shown as Unicode

        record = TutorStore(get_paths()).load(screen.tutor.record.id)
        assert record.outcome == "solved" and record.revealed
        assert [a.correct for a in record.attempts] == [False, True] and record.hints[0].tries == 2


async def test_asks_for_a_problem_and_flags_the_models_own_key(make_session):
    screen = TutorScreen(make_session(ScriptedEngine(TutorScript())))
    async with Host(screen).run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert screen.tutor is None and "problem" in screen.input.placeholder
        await type_in(pilot, screen, "What is 6 times 7?")
        await wait_for(
            pilot, lambda: screen.tutor is not None and screen.tutor.phase == "working" and not screen.busy
        )
        assert screen.tutor.key_unchecked
        assert any("not checked by a person" in e for e in screen.entries())
        await type_in(pilot, screen, "hint")
        await wait_for(pilot, lambda: any(e.startswith("Hint 1") for e in screen.entries()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, TutorScreen))


async def test_f4_in_the_chat_app_opens_tutor_mode_on_the_typed_problem(make_session):
    app = VibelocalApp(make_session(ScriptedEngine(TutorScript())))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "on CPU" in app.chat.model_label)
        prompt = app.chat.query_one(PromptInput)
        prompt.focus()
        await pilot.press(*"What is 6 times 7?")
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, TutorScreen))
        screen = app.screen
        assert screen.problem_text == "What is 6 times 7?"
        await wait_for(
            pilot, lambda: screen.tutor is not None and screen.tutor.phase == "working" and not screen.busy
        )
        await type_in(pilot, screen, "42")
        await wait_for(pilot, lambda: any("42: correct!" in e for e in screen.entries()))
