"""Remote backends: the same ChatEngine the front ends use, over one server (`--backend URL`).

- detect.py: which server answers at a URL (llama-server, vibelocal serve, vLLM, any OpenAI-compatible);
- llamaserver.py: llama-server driven token by token by vibelocal's own turn loop (budget, wrap-up, loops);
- chatapi.py: chat-completions servers, with the budget enforced by the server or client-side;
- client.py: HTTP and server-sent events, every server value validated before use.

Never a cluster of our own: one good server, many laptops.
"""

from __future__ import annotations

from vibelocal.engine.contract import ChatEngine
from vibelocal.engine.remote.client import Client, KeyRefused
from vibelocal.engine.remote.detect import candidate_urls, identify
from vibelocal.errors import BackendError
from vibelocal.types import ChatFormat


def connect(
    url: str, *, api_key: str | None = None, chat: ChatFormat | None = None, model_name: str | None = None
) -> ChatEngine:
    """Find the server at `url` and return an engine for it; BackendError (exit 4) when none answers."""
    chat = chat or ChatFormat()
    last: BackendError | None = None
    for base in candidate_urls(url):
        client = Client(base, api_key)
        try:
            server = identify(client)
        except KeyRefused:
            client.close()
            raise
        except BackendError as exc:
            client.close()
            last = exc
            continue
        if server.kind == "llama-server":
            from vibelocal.engine.remote.llamaserver import LlamaServerEngine

            return LlamaServerEngine(client, server.props, chat, model_name=model_name)
        from vibelocal.engine.remote.chatapi import ChatApiEngine

        return ChatApiEngine(client, server.kind, server.model_id or "default", chat, n_ctx=server.n_ctx)
    assert last is not None
    raise last


__all__ = ["connect"]
