"""The ASGI app: routes, OpenAI-shaped errors, the bearer key, the access log, and the model loading in the
background (health answers 503 until it is ready)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vibelocal.engine.contract import ChatEngine
from vibelocal.serve import routes
from vibelocal.serve.access import AccessLog
from vibelocal.serve.auth import BearerAuth
from vibelocal.serve.errors import ApiError
from vibelocal.serve.routes import ServerState, error_response

Loader = Callable[[], ChatEngine]
"""Loads the model (blocking, in a background thread); raises a VibelocalError when it cannot."""


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = (
        "no such route" if status == 404 else ("method not allowed" if status == 405 else str(exc.detail))
    )
    return error_response(ApiError(status, message, code="not_found" if status == 404 else None))


def _load(state: ServerState, loader: Loader, on_error: Callable[[Exception], None]) -> None:
    try:
        state.engine = loader()
    except Exception as exc:  # reported by the command, which stops the server
        state.load_error = str(exc)
        on_error(exc)


def build_app(
    state: ServerState,
    loader: Loader | None = None,
    *,
    api_key: str | None = None,
    on_load_error: Callable[[Exception], None] = lambda _exc: None,
) -> Starlette:
    """The app over `state`; with `loader`, the model loads in a thread once the server is up."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if loader is not None:
            threading.Thread(
                target=_load, args=(state, loader, on_load_error), name="vibelocal-serve-load", daemon=True
            ).start()
        try:
            yield
        finally:
            state.queue.close()

    app = Starlette(
        routes=[
            Route("/health", routes.health, methods=["GET"]),
            Route("/v1/models", routes.models, methods=["GET"]),
            Route("/v1/chat/completions", routes.chat_completions, methods=["POST"]),
            Route("/v1/chat/completions/control", routes.control, methods=["POST"]),
            Route("/v1/completions", routes.completions, methods=["POST"]),
        ],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.vibelocal = state
    if api_key:
        app.add_middleware(BearerAuth, key=api_key)
    app.add_middleware(AccessLog)
    return app
