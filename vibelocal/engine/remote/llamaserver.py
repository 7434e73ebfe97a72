"""llama-server as a token backend: vibelocal's own turn loop, the server's model and prefix cache.

The prompt is rendered here (the manifest's ChatML) and sent as token ids to `/completion` with
`cache_prompt` and a pinned `id_slot`, so the server never applies a template of its own. Tokens stream back
one by one (`return_tokens`) and feed the same `TurnLoop` the local engine runs: the think splitter, the
budget with its grace and wrap-up, loop nudges and live control all behave as on a laptop.

When the loop injects text (the wrap-up, a forced `</think>`, the forced final answer) or rolls back, the
stream is dropped and the next token comes from a new request whose prompt is everything so far: the server
finds that prefix in its cache and evaluates only the new tokens. Its own counters (`timings.prompt_n`) say
how many it processed; anything beyond the injected tokens is reported as `reprocessed_tokens`.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from vibelocal.engine import prompt as prompts
from vibelocal.engine.control import TurnControl
from vibelocal.engine.remote.base import RemoteEngine
from vibelocal.engine.remote.client import Client, EventStream, count, token_list
from vibelocal.engine.turn import TurnLoop
from vibelocal.errors import BackendError
from vibelocal.types import ChatFormat, ChatMessage, EngineInfo, GenerationSettings, StreamEvent, TurnStats

STOP = -1
"""The token `sample()` returns when the server ended the generation (end of turn)."""


class LlamaServerEngine(RemoteEngine):
    """A ChatEngine over one llama-server (engine/contract.py). One turn at a time per engine."""

    kind = "llama-server"

    def __init__(self, client: Client, props: dict[str, Any], chat: ChatFormat, *, model_name: str | None):
        super().__init__(client)
        self.props, self.model_name = props, model_name
        self.chat = chat
        slots = count(props.get("total_slots"), limit=1024)
        self.parallel = slots or 1
        settings = props.get("default_generation_settings")
        n_ctx = count(settings.get("n_ctx")) if isinstance(settings, dict) else None
        self.n_ctx = n_ctx or 4096
        self.slot: int = -1
        """The server slot of this client's conversation (its prefix cache); learnt from the first answer."""
        self._tokens: dict[tuple[str, bool], list[int]] = {}
        self.stop_ids = self._stop_ids(props)
        path = props.get("model_path")
        self.info = EngineInfo(
            model_path=f"{client.base_url} ({path})" if isinstance(path, str) else client.base_url,
            model_name=model_name,
            backend="remote",
            device=f"llama-server at {client.base_url}",
            n_ctx=self.n_ctx,
            extra={"server": "llama-server", "url": client.base_url, "prompt_format": "manifest chatml"},
        )
        build = props.get("build_info")
        if isinstance(build, str):
            self.info.extra["server_build"] = build[:80]

    # ------------------------------------------------------------------ protocol

    def fork(self) -> LlamaServerEngine:
        """A second client of the same server; it gets a slot of its own on its first request."""
        return LlamaServerEngine(self.client.copy(), self.props, self.chat, model_name=self.model_name)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize(self, text: str, *, special: bool = False, add_special: bool = False) -> list[int]:
        """Text to token ids through the server's `/tokenize` (cached: the loop injects the same texts)."""
        key = (text, special)
        got = self._tokens.get(key) if not add_special else None
        if got is not None:
            return list(got)
        if not text:
            return []
        body = {"content": text, "add_special": add_special, "parse_special": special}
        answer = self.client.post("/tokenize", body)
        tokens = token_list(answer.get("tokens") if isinstance(answer, dict) else None)
        if tokens is None:
            raise BackendError(f"/tokenize on {self.client.base_url} answered something that is not tokens")
        if not add_special and len(text) < 512:
            self._tokens[key] = tokens
        return list(tokens)

    def prompt_tokens(self, messages: Sequence[ChatMessage], settings: GenerationSettings) -> list[int]:
        """The manifest's ChatML, markup with special tokens, message text without (as the local engine)."""
        tokens: list[int] = []
        for i, (text, markup) in enumerate(prompts.chatml_segments(messages, settings, self.chat)):
            tokens += self.tokenize(text, special=markup, add_special=i == 0)
        return tokens

    # ------------------------------------------------------------------ one turn

    def _turn(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl,
        stats: TurnStats,
    ) -> Iterator[StreamEvent]:
        t_start = time.perf_counter()
        seed = settings.seed if settings.seed is not None else random.SystemRandom().randrange(1, 2**31 - 1)
        tokens = self.prompt_tokens(messages, settings)
        stats.prompt_tokens, stats.seed = len(tokens), seed
        if len(tokens) >= self.n_ctx - 1:
            yield StreamEvent(
                "status",
                text=f"the prompt takes {len(tokens)} tokens; the server's context holds {self.n_ctx}",
            )
            stats.total_s = time.perf_counter() - t_start
            yield StreamEvent("done", stop_reason="context_full", stats=stats)
            return
        backend = ServerBackend(self, settings, seed, tokens, stats)
        try:
            loop = TurnLoop(backend, settings, control, stats, chat=self.chat, t_start=t_start)
            yield from loop.run()
        finally:
            backend.close()

    def _stop_ids(self, props: dict[str, Any]) -> set[int]:
        texts = set(self.chat.stop)
        eos = props.get("eos_token")
        if isinstance(eos, str) and 0 < len(eos) < 64:
            texts.add(eos)
        ids: set[int] = set()
        for text in texts:
            got = self.tokenize(text, special=True)
            if len(got) == 1:
                ids.add(got[0])
        return ids


class ServerBackend:
    """The turn loop's `TokenBackend` over llama-server: sampling is reading the stream, evaluating injected
    text is starting a new request from the whole sequence so far (the server's prefix cache keeps the rest)."""

    def __init__(
        self,
        engine: LlamaServerEngine,
        settings: GenerationSettings,
        seed: int,
        prompt: list[int],
        stats: TurnStats,
    ) -> None:
        self.engine, self.settings, self.seed, self.stats = engine, settings, seed, stats
        self.n_ctx = engine.n_ctx
        self.history = list(prompt)
        self._prompt_len = len(prompt)
        self._stream: EventStream | None = None
        self._ready: deque[tuple[int, bytes]] = deque()
        self._last: tuple[int, bytes] = (STOP, b"")
        self._unseen = len(prompt)
        """Tokens appended since the last request that the server did not produce itself."""
        self._new_tokens = 0
        """`_unseen` when the running request began: what the server had to process for it."""
        self._in_flight = False
        """The last token the server streamed is in the history: it sampled it but may not have evaluated it."""
        self._decoded = 0
        self._timed = False
        self.requests = 0

    @property
    def n_past(self) -> int:
        return len(self.history)

    # ------------------------------------------------------------------ TokenBackend

    def sample(self) -> int:
        while not self._ready:
            self._read()
        self._last = self._ready.popleft()
        return self._last[0]

    def is_stop(self, token: int) -> bool:
        return token == STOP or token in self.engine.stop_ids

    def piece(self, token: int) -> bytes:
        if token == self._last[0]:
            return self._last[1]
        return b""

    def tokenize(self, text: str) -> list[int]:
        return self.engine.tokenize(text)

    def eval(self, tokens: list[int]) -> None:
        if not tokens:
            return
        own = self._stream is not None and tokens[0] == self._last[0] and self._last[0] != STOP
        self.history.extend(tokens)
        self._in_flight = own
        if own and len(tokens) == 1:
            return  # the server produced it: already on its side
        self._unseen += len(tokens) - (1 if own else 0)
        self._drop_stream()

    def rollback(self, n_past: int) -> None:
        del self.history[n_past:]
        self._in_flight = False
        self._drop_stream()

    def close(self) -> None:
        self._drop_stream()

    # ------------------------------------------------------------------ the stream

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._ready.clear()
        if stream is not None:
            stream.close()

    def _open(self) -> None:
        s = self.settings
        body: dict[str, Any] = {
            "prompt": self.history,
            "stream": True,
            "cache_prompt": True,
            "return_tokens": True,
            "timings_per_token": True,
            # the first request of a conversation asks for one token: its final answer names the slot the
            # server chose, and every later request is pinned there (its prefix cache), never raced to another
            "n_predict": 1 if self.engine.slot < 0 else max(1, self.n_ctx - len(self.history)),
            "id_slot": self.engine.slot,
            "seed": self.seed,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "min_p": s.min_p,
            "repeat_penalty": s.repeat_penalty,
            "repeat_last_n": 64,
            "typical_p": 1.0,
            "dry_multiplier": 0.0,
            "xtc_probability": 0.0,
            "stop": [],
            "n_probs": 0,
        }
        self._stream = self.engine.client.events("/completion", body)
        self.requests += 1
        self._new_tokens = self._unseen + (1 if self._in_flight else 0)
        self._unseen, self._in_flight = 0, False
        self._decoded = 0
        self._timed = False

    def _read(self) -> None:
        """Read one event of the stream into `_ready` (opening a request first when none is running)."""
        if self._stream is None:
            if len(self.history) >= self.n_ctx:
                self._ready.append((STOP, b""))
                return
            self._open()
        assert self._stream is not None
        try:
            event = next(self._stream)
        except StopIteration:
            self._stream = None
            raise BackendError(
                f"the server at {self.engine.client.base_url} ended the stream without a final answer"
            ) from None
        self._account(event)
        if event.get("stop") is True:
            self._finished(event)
            return
        tokens = token_list(event.get("tokens"))
        content = event.get("content")
        text = content.encode("utf-8") if isinstance(content, str) else b""
        decoded = count(event.get("tokens_predicted"))
        if not tokens:
            return
        missed = decoded - self._decoded - len(tokens) if decoded is not None else 0
        if decoded is not None:
            self._decoded = decoded
        if missed > 0 and text:
            # tokens that ended mid-character are not streamed on their own; recover their ids from the text
            again = self.engine.tokenize(content)  # type: ignore[arg-type]
            if len(again) > 1:
                for token in again[:-1]:
                    self._ready.append((token, b""))
        self._ready.append((tokens[-1], text))

    def _finished(self, event: dict[str, Any]) -> None:
        """The final event: the end of the turn, or the server's own limit (then the next read continues)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        slot = count(event.get("id_slot"), limit=4096)
        if slot is not None:
            self.engine.slot = slot
        if event.get("stop_type") == "limit" and len(self.history) < self.n_ctx:
            return
        if event.get("stop_type") == "eos" and self.history and self._last[1] == b"":
            last = self.history[-1]
            if (
                last == self._last[0]
                and last not in self.engine.stop_ids
                and len(self.history) > self._prompt_len
            ):
                self.engine.stop_ids.add(last)  # an end-of-generation token that is no stop string
                self.history.pop()
        self._ready.append((STOP, b""))

    def _account(self, event: dict[str, Any]) -> None:
        """The server's count of prompt tokens it processed for this request, once per request."""
        slot = count(event.get("id_slot"), limit=4096)
        if slot is not None:
            self.engine.slot = slot
        timings = event.get("timings")
        if self._timed or not isinstance(timings, dict):
            return
        processed = count(timings.get("prompt_n"))
        if processed is None:
            return
        self._timed = True
        stats = self.stats
        if self.requests == 1:
            stats.cached_tokens = max(0, self._prompt_len - processed)
            stats.evaluated_tokens = processed
        else:
            stats.reprocessed_tokens += max(0, processed - self._new_tokens)
        stats.server_requests = self.requests
