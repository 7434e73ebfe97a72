"""Which server is at a URL: llama-server (`/props`), vibelocal serve (`/health` with its extension object),
vLLM (`/version`), or any other OpenAI-compatible server (`/v1/models`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vibelocal.engine.remote.client import Client
from vibelocal.errors import BackendError, UsageError

DEFAULT_PORTS = (8080, 8000)
"""Tried in order when a URL names no port: llama-server's default, then vLLM's."""


@dataclass(frozen=True)
class ServerInfo:
    kind: str
    """"llama-server", "vibelocal", "vllm" or "openai"."""
    base_url: str
    model_id: str | None
    props: dict[str, Any]
    n_ctx: int | None = None


def candidate_urls(url: str) -> list[str]:
    """The URLs to try for `url` (`host`, `host:port`, `http://host[:port]`), refusing anything else."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--backend {url!r} is not an http(s) URL", hint="for example --backend http://host:8080"
        )
    if parts.query or parts.fragment or (parts.path not in ("", "/")):
        raise UsageError(f"--backend {url!r}: give the server's address only (no path)")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"--backend {url!r} has an invalid port") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None:
        return [f"{parts.scheme}://{host}:{port}"]
    return [f"{parts.scheme}://{host}:{p}" for p in DEFAULT_PORTS]


def identify(client: Client) -> ServerInfo:
    """Ask the server what it is; raises BackendError when nothing usable answers."""
    props = client.get("/props", quiet=True)
    if isinstance(props, dict) and isinstance(props.get("default_generation_settings"), dict):
        return ServerInfo("llama-server", client.base_url, None, props)
    health = client.get("/health", quiet=True)
    if isinstance(health, dict) and isinstance(health.get("vibelocal"), dict):
        ext = health["vibelocal"]
        model = health.get("model") if isinstance(health.get("model"), str) else None
        n_ctx = (
            ext.get("n_ctx")
            if isinstance(ext.get("n_ctx"), int) and not isinstance(ext.get("n_ctx"), bool)
            else None
        )
        return ServerInfo("vibelocal", client.base_url, model or _first_model(client), health, n_ctx)
    version = client.get("/version", quiet=True)
    models = client.get("/v1/models", quiet=True)
    model_id, n_ctx = _model_of(models)
    if isinstance(version, dict) and isinstance(version.get("version"), str):
        return ServerInfo("vllm", client.base_url, model_id, version, n_ctx)
    if model_id is not None:
        return ServerInfo("openai", client.base_url, model_id, {}, n_ctx)
    raise BackendError(
        f"the server at {client.base_url} is not llama-server, vLLM or an OpenAI-compatible server"
    )


def _first_model(client: Client) -> str | None:
    return _model_of(client.get("/v1/models", quiet=True))[0]


def _model_of(models: Any) -> tuple[str | None, int | None]:
    data = models.get("data") if isinstance(models, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None, None
    first = data[0]
    model_id = first.get("id") if isinstance(first.get("id"), str) else None
    n_ctx = first.get("max_model_len")
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or not 0 < n_ctx <= 10_000_000:
        n_ctx = None
    return (model_id[:200] if model_id else None), n_ctx
