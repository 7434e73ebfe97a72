"""One log line per request on stderr: method, path, status, time, and for turns the tokens, tok/s, budget."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOG_KEY = "vibelocal.log"
"""Where a route leaves the details of its turn in the ASGI scope, for the line written at the end."""
PENDING_KEY = "vibelocal.log.pending"
"""A future the line waits for (a stream the client left: the turn's final counts come a moment later)."""
PENDING_WAIT_S = 30.0


def turn_details(info: dict[str, Any]) -> str:
    if not info:
        return ""
    parts = [f"id={info['id']}"]
    for name in ("prompt", "cached", "reasoning", "content"):
        parts.append(f"{name}={info.get(name, 0)}")
    rate = info.get("tok_s")
    parts.append(f"{rate:.1f} tok/s" if rate else "- tok/s")
    budget = info.get("budget")
    parts.append(f"budget={'unlimited' if budget is None else budget}")
    parts.append(f"hit={'yes' if info.get('budget_hit') else 'no'}")
    parts.append(f"stop={info.get('stop')}")
    return " " + " ".join(parts)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class AccessLog:
    """ASGI middleware writing the line once the response is complete (for a stream: after its last event)."""

    def __init__(self, app: ASGIApp, write: Callable[[str], None] = _stderr) -> None:
        self.app = app
        self.write = write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [0]
        scope[LOG_KEY] = {}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            pending = scope.get(PENDING_KEY)
            if pending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(pending), PENDING_WAIT_S)
            spent = time.perf_counter() - start
            code = status[0] or 499  # nothing was sent: the client went away first
            line = f"serve: {scope['method']} {scope['path']} {code} {spent:.2f}s"
            self.write(line + turn_details(scope[LOG_KEY]))
