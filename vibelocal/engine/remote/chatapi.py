"""Chat-completions servers as an engine: another `vibelocal serve`, vLLM, or any OpenAI-compatible server.

These servers render the template and sample; vibelocal keeps the budget honest on top:
- *vibelocal serve* enforces the budget itself (`thinking_budget_tokens`) and takes live control
  (`POST /v1/chat/completions/control`: `extend`, `reasoning_end`).
- *vLLM* and other servers get the budget client-side: thinking is counted as it streams and, at the cap
  (after the grace to the end of the sentence) or on a wrap-up request, the stream is dropped and the turn
  continues in a new request whose last assistant message is the thinking so far plus Qwen's wrap-up and
  `</think>` (`continue_final_message`, which vLLM supports). With prefix caching the server evaluates only
  the new text. vLLM also gets `thinking_token_budget`, so a server that enforces it cuts at the same cap.

Whatever the server, reasoning arrives in `reasoning_content` or `reasoning`; a `<think>` block left in
`content` is split here, so a raw tag never reaches a front end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vibelocal.engine import prompt as prompts
from vibelocal.engine.budget import WRAP_UP_TEXT, BudgetController
from vibelocal.engine.control import TurnControl
from vibelocal.engine.remote.base import RemoteEngine
from vibelocal.engine.remote.client import Client, EventStream, count
from vibelocal.engine.think import ThinkSplitter, ThinkState
from vibelocal.errors import BackendError
from vibelocal.types import (
    ChatFormat,
    ChatMessage,
    EngineInfo,
    GenerationSettings,
    StopReason,
    StreamEvent,
    TurnStats,
)

_STOPS: dict[str, StopReason] = {"stop": "answered", "length": "budget_exhausted", "tool_calls": "answered"}


@dataclass
class _Turn:
    """What one turn has streamed so far (it may span several requests)."""

    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    response_id: str | None = None
    finish: str | None = None
    counted_thinking: int = 0
    usage_thinking: int | None = None


class ChatApiEngine(RemoteEngine):
    """A ChatEngine over `/v1/chat/completions` (engine/contract.py). One turn at a time."""

    def __init__(
        self, client: Client, kind: str, model_id: str, chat: ChatFormat, *, n_ctx: int | None = None
    ):
        super().__init__(client)
        self.kind, self.model_id, self.chat = kind, model_id, chat
        self.info = EngineInfo(
            model_path=f"{client.base_url} ({model_id})",
            model_name=model_id,
            backend="remote",
            device=f"{kind} at {client.base_url}",
            n_ctx=n_ctx or 32768,
            extra={"server": kind, "url": client.base_url, "prompt_format": "server chat template"},
        )

    def fork(self) -> ChatApiEngine:
        return ChatApiEngine(self.client.copy(), self.kind, self.model_id, self.chat, n_ctx=self.info.n_ctx)

    def count_tokens(self, text: str) -> int:
        """The server's count where it has `/tokenize` (vLLM, vibelocal serve); else a safe overestimate."""
        answer = None
        with contextlib.suppress(BackendError):
            answer = self.client.post("/tokenize", {"model": self.model_id, "prompt": text})
        got = count(answer.get("count")) if isinstance(answer, dict) else None
        return got if got is not None else len(text.encode("utf-8")) // 3 + 1

    def _turn(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl,
        stats: TurnStats,
    ) -> Iterator[StreamEvent]:
        return _ChatTurn(self, messages, settings, control, stats).run()

    # ------------------------------------------------------------------ requests

    def body(
        self, messages: list[dict[str, Any]], settings: GenerationSettings, *, cont: bool
    ) -> dict[str, Any]:
        """The request of one leg of a turn; `cont`: continue the last (assistant) message."""
        body: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": (settings.max_thinking_tokens or 0) + settings.max_answer_tokens + 256
            if settings.max_thinking_tokens is not None
            else None,
        }
        if settings.seed is not None:
            body["seed"] = settings.seed
        budget = settings.max_thinking_tokens
        if self.kind == "vibelocal":
            body["thinking_budget_tokens"] = budget if budget is not None else -1
        elif self.kind == "vllm":
            body["stream_options"]["continuous_usage_stats"] = True
            if settings.top_k:
                body["top_k"] = settings.top_k
            if budget is not None and not cont:
                body["thinking_token_budget"] = budget
        if cont:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        return {k: v for k, v in body.items() if v is not None}

    def control(self, response_id: str, action: str, tokens: int = 0) -> bool:
        """vibelocal serve's live control; False when the server does not take it."""
        body: dict[str, Any] = {"id": response_id, "action": action}
        if tokens:
            body["tokens"] = tokens
        try:
            self.client.post("/v1/chat/completions/control", body)
        except BackendError:
            return False
        return True


class _ChatTurn:
    """One turn over a chat server: stream, split, count, steer; restart with the wrap-up when needed."""

    def __init__(
        self,
        engine: ChatApiEngine,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl,
        stats: TurnStats,
    ) -> None:
        self.engine, self.settings, self.control, self.stats = engine, settings, control, stats
        self.messages = [
            {"role": m.role, "content": m.content} for m in prompts.history(messages, engine.chat)
        ]
        self.server_budget = engine.kind == "vibelocal"
        self.budget = BudgetController(
            settings.max_thinking_tokens, grace=settings.grace_tokens, min_tokens=settings.min_thinking_tokens
        )
        self.turn = _Turn()
        self.t_start = time.perf_counter()
        self.splitter = self._splitter()

    def _splitter(self) -> ThinkSplitter:
        start = ThinkState.THINKING if self.settings.prefill_think else ThinkState.START
        return ThinkSplitter(
            open_tag=self.engine.chat.think_open, close_tag=self.engine.chat.think_close, start=start
        )

    def run(self) -> Iterator[StreamEvent]:
        stats = self.stats
        stats.budget_tokens = self.budget.budget
        stream = self.engine.client.events(
            "/v1/chat/completions", self.engine.body(self.messages, self.settings, cont=False)
        )
        stats.server_requests = 1
        reason: StopReason | None = None
        try:
            while reason is None:
                reason, restart = yield from self._leg(stream)
                if restart:
                    stream.close()
                    yield StreamEvent("thinking", text=WRAP_UP_TEXT, thinking_tokens=stats.thinking_tokens)
                    stream = self._continue()
                    stats.server_requests += 1
        finally:
            stream.close()
        for kind, text in self.splitter.finish():
            if kind == "answer" and text:
                self.turn.answer.append(text)
                yield StreamEvent("answer", text=text)
            elif kind == "thinking" and text:
                yield StreamEvent("thinking", text=text, thinking_tokens=stats.thinking_tokens)
        yield self._done(reason)

    def _leg(self, stream: EventStream) -> Iterator[StreamEvent]:
        """Stream until the server ends, a cancel, or a client-side wrap-up; returns (stop, restart)."""
        for event in stream:
            if (stop := (yield from self._commands())) is not None:
                return stop
            wrap = yield from self._event(event)
            if wrap:
                return None, True
        return _STOPS.get(self.turn.finish or "stop", "answered"), False

    def _commands(self) -> Iterator[StreamEvent]:
        cmds = self.control.take()
        if cmds.cancel:
            return "cancelled", False
        rid = self.turn.response_id
        if cmds.extend_tokens:
            if self.server_budget and rid:
                self.engine.control(rid, "extend", cmds.extend_tokens)
            if note := self.budget.extend(cmds.extend_tokens):
                self.stats.budget_tokens = self.budget.budget
                yield self._budget_event(note)
        if cmds.wrap_up and self.splitter.state is not ThinkState.ANSWER:
            if self.server_budget and rid:
                self.engine.control(rid, "reasoning_end")
            else:
                self.budget.request_wrap_up()
        return None

    def _event(self, event: dict[str, Any]) -> Iterator[StreamEvent]:
        """One chunk: reasoning and content become events; returns True when the client-side budget cuts."""
        turn = self.turn
        if isinstance(event.get("id"), str) and turn.response_id is None:
            turn.response_id = event["id"][:200]
        self._usage(event.get("usage"))
        self._extension(event.get("vibelocal"))
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return False
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            turn.finish = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return False
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        wrap = False
        if isinstance(reasoning, str) and reasoning:
            wrap = yield from self._thinking(reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            for kind, text in self.splitter.feed(content):
                if kind == "thinking":
                    wrap = (yield from self._thinking(text)) or wrap
                elif kind == "answer":
                    turn.answer.append(text)
                    self.stats.answer_tokens += 1
                    yield StreamEvent("answer", text=text)
        return wrap

    def _thinking(self, text: str) -> Iterator[StreamEvent]:
        turn, stats = self.turn, self.stats
        turn.thinking.append(text)
        turn.counted_thinking += 1
        stats.thinking_tokens = max(turn.counted_thinking, turn.usage_thinking or 0)
        yield StreamEvent(
            "thinking", text=text, thinking_tokens=stats.thinking_tokens, budget_tokens=self.budget.budget
        )
        if self.server_budget and not self.budget.wrapped:
            return False
        step = self.budget.step(stats.thinking_tokens, text)
        for note in step.notes:
            yield self._budget_event(note)
        return step.wrap_up and not self.server_budget

    def _continue(self) -> EventStream:
        """The wrap-up as a new request: the assistant message so far, Qwen's sentence and `</think>`."""
        chat, turn = self.engine.chat, self.turn
        tail = WRAP_UP_TEXT + chat.think_close + "\n\n"
        turn.thinking.append(WRAP_UP_TEXT)
        prefix = f"{chat.think_open}\n" + "".join(turn.thinking) + chat.think_close + "\n\n"
        self.stats.forced_tokens += max(1, len(tail) // 4)
        self.splitter = ThinkSplitter(
            open_tag=chat.think_open, close_tag=chat.think_close, start=ThinkState.ANSWER
        )
        messages = [*self.messages, {"role": "assistant", "content": prefix}]
        body = self.engine.body(messages, self.settings, cont=True)
        return self.engine.client.events("/v1/chat/completions", body)

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        stats = self.stats
        prompt = count(usage.get("prompt_tokens"))
        if prompt is not None and stats.server_requests <= 1:
            stats.prompt_tokens = prompt
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and (r := count(details.get("reasoning_tokens"))) is not None:
            self.turn.usage_thinking = r
            stats.thinking_tokens = max(stats.thinking_tokens, r)
            completion = count(usage.get("completion_tokens"))
            if completion is not None and completion >= r:
                stats.answer_tokens = completion - r
        cached = usage.get("prompt_tokens_details")
        if isinstance(cached, dict) and (c := count(cached.get("cached_tokens"))) is not None:
            stats.cached_tokens = c

    def _extension(self, ext: Any) -> None:
        """vibelocal serve's own account of the turn: the counts its engine really made."""
        if not isinstance(ext, dict):
            return
        stats = self.stats
        stats.budget_hit = ext.get("budget_hit") is True or stats.budget_hit
        for name in (
            "thinking_tokens",
            "answer_tokens",
            "forced_tokens",
            "evaluated_tokens",
            "cached_tokens",
        ):
            if (value := count(ext.get(name))) is not None:
                setattr(stats, name, value)
        if (budget := count(ext.get("budget_tokens"))) is not None:
            stats.budget_tokens = budget

    def _budget_event(self, note: str) -> StreamEvent:
        return StreamEvent(
            "budget",
            note=note,
            thinking_tokens=self.stats.thinking_tokens,
            budget_tokens=self.budget.budget,  # type: ignore[arg-type]
        )

    def _done(self, reason: StopReason) -> StreamEvent:
        stats = self.stats
        stats.total_s = time.perf_counter() - self.t_start
        stats.budget_hit = stats.budget_hit or self.budget.hit
        truncated = self.splitter.state is ThinkState.THINKING and not self.turn.answer
        return StreamEvent("done", stop_reason=reason, stats=stats, truncated_thinking=truncated)
