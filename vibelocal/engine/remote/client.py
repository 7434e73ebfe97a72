"""A small HTTP client for remote backends: JSON calls and server-sent-event streams, errors as one line.

Everything a server sends is validated before it is used as a number: `number()` and `count()` refuse
booleans, NaN, negatives and absurd sizes, so a hostile or broken server cannot steer a count or a length.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx2 as httpx

from vibelocal.errors import BackendError

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 600.0
"""A long prompt on a busy CPU server can take minutes before its first token."""
RETRIES = 3
"""Attempts for a request that could not connect (a restarting server), with backoff."""
T = TypeVar("T")
MAX_COUNT = 10_000_000
"""The largest token count or context size accepted from a server."""


class KeyRefused(BackendError):
    """The server wants a different API key (HTTP 401/403): trying other ports will not help."""


def number(value: Any, *, default: float | None = None) -> float | None:
    """A finite, non-negative number from a server, else `default`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if not math.isfinite(value) or value < 0:
        return default
    return float(value)


def count(value: Any, *, default: int | None = None, limit: int = MAX_COUNT) -> int | None:
    """A non-negative integer no larger than `limit` from a server, else `default`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        return default
    return value


def token_list(value: Any, n_vocab: int | None = None) -> list[int] | None:
    """A list of token ids from a server, or None when it is not one."""
    if not isinstance(value, list) or len(value) > MAX_COUNT:
        return None
    limit = n_vocab - 1 if n_vocab else 2**31 - 1
    out: list[int] = []
    for t in value:
        got = count(t, limit=limit)
        if got is None:
            return None
        out.append(got)
    return out


class Client:
    """One server: base URL, optional bearer key, retries for connection failures."""

    def __init__(self, base_url: str, api_key: str | None = None, *, read_timeout: float = READ_TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self._key, self._read_timeout = api_key, read_timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=CONNECT_TIMEOUT_S),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def copy(self) -> Client:
        """Another connection to the same server (for turns that run side by side)."""
        return Client(self.base_url, self._key, read_timeout=self._read_timeout)

    # ------------------------------------------------------------------ plain calls

    def get(self, path: str, *, quiet: bool = False) -> Any:
        """GET a JSON document (None when `quiet` and the route is missing or not JSON)."""
        response = self._send("GET", path, None)
        return self._json(response, path, quiet=quiet)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._send("POST", path, body), path, quiet=False)

    def status(self, path: str) -> int:
        """The HTTP status of a GET (0: nothing answered)."""
        try:
            return self._http.get(path).status_code
        except httpx.HTTPError:
            return 0

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        return self.retrying(lambda: self._http.request(method, path, json=body))

    def retrying(self, call: Callable[[], T]) -> T:
        """`call()`, again with backoff while the server cannot be connected to; errors become one line."""
        delay = 0.5
        for attempt in range(RETRIES):
            try:
                return call()
            except httpx.ConnectError as exc:
                if attempt == RETRIES - 1:
                    raise self.unreachable(exc) from None
            except httpx.HTTPError as exc:
                raise self.unreachable(exc) from None
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _json(self, response: httpx.Response, path: str, *, quiet: bool) -> Any:
        if response.status_code in (401, 403):
            raise KeyRefused(
                f"the server at {self.base_url} refused the API key (HTTP {response.status_code})",
                hint="pass --api-key or set VIBELOCAL_API_KEY",
            )
        if response.status_code >= 400:
            if quiet:
                return None
            raise BackendError(
                f"{path} on {self.base_url} answered HTTP {response.status_code}: {error_text(response)}"
            )
        try:
            return response.json()
        except ValueError:
            if quiet:
                return None
            raise BackendError(f"{path} on {self.base_url} did not answer JSON") from None

    def unreachable(self, exc: BaseException) -> BackendError:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "cannot be reached"
        return BackendError(
            f"the server at {self.base_url} {kind} ({type(exc).__name__})",
            hint="check that it runs and the URL (--backend) is right",
        )

    # ------------------------------------------------------------------ streams

    def events(self, path: str, body: dict[str, Any]) -> EventStream:
        """POST `body` and iterate the server-sent events of the answer (JSON objects)."""
        return EventStream(self, path, body)


class EventStream:
    """The `data:` events of one streaming response; `close()` drops the connection (the server stops)."""

    def __init__(self, client: Client, path: str, body: dict[str, Any]) -> None:
        self.client = client
        self._cm: Any = None

        def open_stream() -> httpx.Response:
            self._cm = client._http.stream("POST", path, json=body)
            return self._cm.__enter__()

        self._response = client.retrying(open_stream)
        if self._response.status_code >= 400:
            self._response.read()
            status = self._response.status_code
            text = error_text(self._response)
            self.close()
            if status in (401, 403):
                raise KeyRefused(
                    f"the server at {client.base_url} refused the API key (HTTP {status})",
                    hint="pass --api-key or set VIBELOCAL_API_KEY",
                )
            raise BackendError(f"{path} on {client.base_url} answered HTTP {status}: {text}")
        self._lines = self._response.iter_lines()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        while True:
            try:
                line = next(self._lines)
            except StopIteration:
                raise
            except httpx.HTTPError as exc:
                raise BackendError(
                    f"the server at {self.client.base_url} stopped answering mid-stream ({type(exc).__name__})"
                ) from None
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                raise StopIteration
            try:
                event = json.loads(data)
            except ValueError:
                continue
            if isinstance(event, dict):
                if "error" in event and not event.get("choices"):
                    raise BackendError(f"the server reported an error: {short(event['error'])}")
                return event

    def close(self) -> None:
        cm, self._cm = self._cm, None
        if cm is not None:
            with contextlib.suppress(httpx.HTTPError):
                cm.__exit__(None, None, None)


def error_text(response: httpx.Response) -> str:
    """The message of an error body (OpenAI or llama.cpp shape), shortened to one line."""
    try:
        body = response.json()
    except ValueError:
        return short(response.text or response.reason_phrase)
    if isinstance(body, dict) and "error" in body:
        return short(body["error"])
    return short(body)


def short(value: Any, limit: int = 200) -> str:
    if isinstance(value, dict):
        value = value.get("message", value)
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
