"""Is the hub there at all? Tell "cannot resolve / cannot connect" apart from a flaky transfer, and word it once."""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

from vibelocal.models.transfer import HubUnreachable

WAYS_FORWARD = "use --model PATH.gguf, set HF_ENDPOINT=<mirror>, or run `vibelocal pull` once online"
OFFLINE_WAYS_FORWARD = "use --model PATH.gguf, or run `vibelocal pull` with HF_HUB_OFFLINE unset once online"
_NO_ROUTE = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}


class HubOffline(HubUnreachable):
    """The hub's name does not resolve or nothing answers on its port: retrying will not help."""


def host_of(endpoint: str) -> str:
    """`huggingface.co` for `https://huggingface.co`; the endpoint itself when it has no host part."""
    parts = urlsplit(endpoint)
    return parts.netloc or endpoint


def is_unreachable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the name did not resolve or the connection was refused."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        if isinstance(current, OSError) and current.errno in _NO_ROUTE:
            return True
        if type(current).__name__ in ("ConnectError", "ConnectTimeout", "NameResolutionError"):
            return True
        current = current.__cause__ or current.__context__
    return False


def offline_error(endpoint: str) -> HubOffline:
    """The one short line for an unreachable hub, naming the ways forward."""
    return HubOffline(f"offline or {host_of(endpoint)} is unreachable", hint=WAYS_FORWARD)


def probe(endpoint: str, timeout_s: float = 3.0) -> str | None:
    """None when the endpoint's host resolves and accepts a TCP connection; otherwise why not, in a few words.

    Cheap enough for a first-run screen to call before it offers a download. HF_HUB_OFFLINE is the caller's business.
    """
    parts = urlsplit(endpoint)
    host = parts.hostname or endpoint
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.gaierror:
        return f"cannot resolve {host} (offline?)"
    except OSError as exc:
        return f"cannot connect to {host_of(endpoint)} ({exc.strerror or type(exc).__name__})"


def hub_problem(offline_setting: bool = False, timeout_s: float = 3.0) -> str | None:
    """Why a download cannot start now (offline mode, or the hub does not answer), in words for any front end."""
    from vibelocal.models.download import hub_endpoint, is_offline

    if is_offline(offline_setting):
        return "offline mode is on (HF_HUB_OFFLINE or the offline setting)"
    endpoint = hub_endpoint()
    why = bounded_probe(endpoint, timeout_s)
    return f"{why}: offline, or {host_of(endpoint)} is unreachable" if why else None


def bounded_probe(endpoint: str, timeout_s: float = 3.0) -> str | None:
    """`probe` with a hard limit: a name lookup has no timeout of its own and can hang for long without network,
    so the probe runs in a daemon thread and a silent one counts as unreachable."""
    import threading

    result: list[str | None] = []
    worker = threading.Thread(target=lambda: result.append(probe(endpoint, timeout_s)), daemon=True)
    worker.start()
    worker.join(timeout_s + 1.0)
    if not result:
        return f"no answer from {host_of(endpoint)} within {timeout_s + 1.0:.0f} s"
    return result[0]
