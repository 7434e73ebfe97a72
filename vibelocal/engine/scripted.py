"""A scripted engine: plays back fixed thinking and answer text through the real thinking budget.

Front-end tests use it for determinism and the TUI benchmark uses it for a known token rate; it imports no
inference library. The real engine is engine.llama.LlamaEngine. It ships in the package on purpose, as a
documented testing engine: the rendering benchmark and the front-end tests drive the real UI with it. The
thinking budget is the real `BudgetController` (cap, grace to the sentence end, warning, extend, wrap-up
requests), so what a front end shows of a budget is what it shows with a model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from vibelocal.engine.budget import WRAP_UP_TEXT, BudgetController
from vibelocal.engine.control import TurnControl
from vibelocal.types import ChatMessage, EngineInfo, GenerationSettings, StreamEvent, TurnStats

_PIECE = re.compile(r"\s*\S{1,4}|\s+")


def pieces(text: str) -> list[str]:
    """Split text into token-sized pieces (at most four visible characters each)."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class Script:
    """What one turn says."""

    thinking: str = ""
    answer: str = ""


Scripter = Callable[[Sequence[ChatMessage]], Script]


class ScriptedEngine:
    """Plays `script` (a Script, or a function of the messages) at `tokens_per_s` (None: as fast as possible)."""

    def __init__(
        self,
        script: Script | Scripter,
        *,
        tokens_per_s: float | None = None,
        info: EngineInfo | None = None,
    ) -> None:
        self._script = script
        self._delay = 1.0 / tokens_per_s if tokens_per_s else 0.0
        self._due = 0.0
        self.info = info or EngineInfo(
            model_path="scripted", model_name="scripted", quant="none", device="CPU"
        )
        self.turns: list[list[ChatMessage]] = []
        self.closed = False

    def count_tokens(self, text: str) -> int:
        return len(pieces(text))

    def close(self) -> None:
        self.closed = True

    def _tick(self) -> None:
        """Pace tokens against an absolute schedule, so sleep overshoot does not lower the average rate."""
        if not self._delay:
            return
        self._due += self._delay
        wait = self._due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
    ) -> Iterator[StreamEvent]:
        self.turns.append(list(messages))
        script = self._script(messages) if callable(self._script) else self._script
        control = control or TurnControl()
        start = time.perf_counter()
        self._due = start
        stats = TurnStats(
            prompt_tokens=sum(self.count_tokens(m.content) for m in messages),
            budget_tokens=settings.max_thinking_tokens,
            seed=settings.seed,
        )
        stats.evaluated_tokens = stats.prompt_tokens
        budget = BudgetController(settings.max_thinking_tokens, grace=settings.grace_tokens)

        def finish(reason: str) -> StreamEvent:
            stats.total_s = time.perf_counter() - start
            decode = stats.thinking_tokens + stats.answer_tokens
            stats.decode_tok_s = decode / stats.total_s if stats.total_s > 0 and decode else None
            return StreamEvent("done", stop_reason=reason, stats=stats)  # type: ignore[arg-type]

        def first_token() -> None:
            if stats.ttft_s is None:
                stats.ttft_s = time.perf_counter() - start

        def budget_event(note: str) -> StreamEvent:
            return StreamEvent(
                "budget", note=note, thinking_tokens=stats.thinking_tokens, budget_tokens=budget.budget
            )

        think = pieces(script.thinking) if settings.max_thinking_tokens != 0 else []
        for piece in think:
            cmds = control.take()
            if cmds.cancel:
                yield finish("cancelled")
                return
            if cmds.extend_tokens and (note := budget.extend(cmds.extend_tokens)):
                yield budget_event(note)
            if cmds.wrap_up:
                budget.request_wrap_up()
            self._tick()
            first_token()
            stats.thinking_tokens += 1
            stats.evaluated_tokens += 1
            yield StreamEvent(
                "thinking", text=piece, thinking_tokens=stats.thinking_tokens, budget_tokens=budget.budget
            )
            step = budget.step(stats.thinking_tokens, piece)
            for note in step.notes:
                yield budget_event(note)
            if step.wrap_up:
                yield StreamEvent("thinking", text=WRAP_UP_TEXT)
                stats.forced_tokens += len(pieces(WRAP_UP_TEXT)) + 1
                break
        stats.budget_tokens = budget.budget
        stats.budget_hit = budget.hit
        answer = pieces(script.answer)
        for piece in answer[: settings.max_answer_tokens]:
            if control.cancelled:
                yield finish("cancelled")
                return
            self._tick()
            first_token()
            stats.answer_tokens += 1
            stats.evaluated_tokens += 1
            yield StreamEvent("answer", text=piece)
        # like the real engine: an answer cut by its budget is budget_exhausted
        yield finish("budget_exhausted" if len(answer) > settings.max_answer_tokens else "answered")
