"""The API key: required to bind beyond loopback, and checked as `Authorization: Bearer KEY` on every route."""

from __future__ import annotations

import ipaddress
import json
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from vibelocal.serve.errors import ApiError


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; anything else (0.0.0.0, a LAN address, a name) is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """ASGI middleware: every HTTP request must carry the key; otherwise 401 with an OpenAI-shaped body."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.expected = f"Bearer {key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        err = ApiError(
            401, "missing or wrong API key: send Authorization: Bearer KEY", code="invalid_api_key"
        )
        body = json.dumps(err.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Scope) -> bool:
        got = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                got = value
        return secrets.compare_digest(got, self.expected)
