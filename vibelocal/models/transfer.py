"""Resumable HTTP transfer over huggingface_hub's session: Range resume, stall detection, backoff, progress.

The body loop lives here because huggingface_hub 2.4's own (`hf_hub_download` -> `_download_to_tmp_and_move`)
deletes its process-unique partial file on any failure, so nothing survives a Ctrl-C, a crash or exhausted retries.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from vibelocal.errors import DownloadError, ExitCode
from vibelocal.units import format_bytes

Phase = Literal["download", "verify", "cached"]


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report. `note` carries a human-readable event (a retry, a resume, a fallback source)."""

    file: str
    downloaded_bytes: int
    total_bytes: int | None
    speed_bps: float | None = None
    eta_s: float | None = None
    phase: Phase = "download"
    resumed_from: int = 0
    note: str | None = None


@dataclass(frozen=True)
class DownloadOptions:
    """Knobs for the transfer; the defaults suit real networks, tests shrink the timeouts."""

    stall_timeout_s: float | None = None
    """No bytes for this long counts as a dropped connection (resumed). Default: $HF_HUB_DOWNLOAD_TIMEOUT or 30."""
    metadata_timeout_s: float = 15.0
    """Timeout of the metadata (HEAD) and listing requests."""
    max_attempts: int = 6
    """Consecutive failed attempts (5xx, drops, stalls) before giving up; any progress resets the count."""
    backoff_s: float = 1.0
    """First retry delay; doubles per failed attempt up to `max_backoff_s`."""
    max_backoff_s: float = 30.0
    disk_margin_bytes: int = 256 * 1024 * 1024
    """Free space kept beyond the file's size."""
    free_bytes: Callable[[Path], int] | None = None
    """Free space of the filesystem holding a directory (default: shutil.disk_usage)."""
    revision: str = "main"

    def stall_timeout(self) -> float:
        if self.stall_timeout_s is not None:
            return self.stall_timeout_s
        with contextlib.suppress(ValueError):
            return float(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT", ""))
        return 30.0


class DownloadCancelled(DownloadError):
    """The user stopped the download; the partial file is kept and the next pull resumes it."""

    exit_code = ExitCode.INTERRUPTED


class HubUnreachable(DownloadError):
    """Retries ran out on network errors, stalls or 5xx answers (a cached copy may still serve)."""


@dataclass(frozen=True)
class Transfer:
    """What one file's transfer reports to and obeys."""

    file: str
    what: str
    """`repo/file`, for messages."""
    options: DownloadOptions
    report: Callable[[DownloadProgress], None]
    cancel: threading.Event | None = None


RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def fetch_resumable(url: str, headers: dict[str, str], target: Path, size: int, t: Transfer) -> None:
    """Fill `target` up to `size` bytes, resuming with Range; retries drops, stalls and 5xx/429.

    Any other HTTP error is raised as huggingface_hub's exception for the caller to word.
    """
    from huggingface_hub.errors import HfHubHTTPError

    target.parent.mkdir(parents=True, exist_ok=True)
    first = target.stat().st_size if target.exists() else 0
    meter = Meter(t.file, size, t.report, start=first)
    if first:
        meter.note(f"resuming at {format_bytes(first, digits=2)} of {format_bytes(size, digits=2)}")
    failures = 0
    while True:
        have = target.stat().st_size if target.exists() else 0
        if have > size:
            target.unlink()
            have = 0
        if have == size:
            meter.done(size)
            return
        before = have
        try:
            received = _get_range(url, headers, target, have, size, meter, t)
        except HfHubHTTPError as exc:
            if http_status(exc) not in RETRY_STATUS:
                raise
            failures = backoff(failures, f"HTTP {http_status(exc)}", t, meter=meter)
        except Exception as exc:
            if not is_transient(exc):
                raise
            got = target.stat().st_size - before if target.exists() else 0
            kept = target.stat().st_size if target.exists() else 0
            why = "stalled" if "timeout" in type(exc).__name__.lower() else "dropped"
            failures = backoff(
                0 if got > 0 else failures,
                f"connection {why} at {format_bytes(kept, digits=2)}",
                t,
                meter=meter,
            )
        else:  # the answer ended cleanly: short of the size is fine if bytes came, a failed attempt if none did
            kept = target.stat().st_size if target.exists() else 0
            if received == 0 and kept < size:
                why = f"the server sent no bytes at {format_bytes(kept, digits=2)} of {format_bytes(size, digits=2)}"
                failures = backoff(failures, why, t, meter=meter)
            elif received:
                failures = 0


def _get_range(
    url: str, headers: dict[str, str], target: Path, have: int, size: int, meter: Meter, t: Transfer
) -> int:
    """One GET from `have` on; returns how many body bytes it wrote."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    httpx = http_library()
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
    stall = t.options.stall_timeout()
    timeout = httpx.Timeout(stall, connect=min(stall, t.options.metadata_timeout_s))
    with get_session().stream("GET", url, headers=request_headers, timeout=timeout) as response:
        hf_raise_for_status(response)
        start = 0
        if response.status_code == 206:
            m = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            start = int(m.group(1)) if m else -1
            if not 0 <= start <= have:
                raise DownloadError(
                    f"the server answered an unexpected range ({response.headers.get('Content-Range')})"
                )
        with target.open("r+b" if target.exists() else "wb") as fh:
            fh.seek(start)
            fh.truncate()  # a 200 (Range ignored) restarts at 0; a 206 continues where it says
            meter.position(start)
            received = 0
            for chunk in response.iter_bytes():  # as received, so a drop loses no buffered bytes
                if t.cancel is not None and t.cancel.is_set():
                    fh.flush()
                    raise DownloadCancelled(
                        f"download of {meter.base.file} stopped at {format_bytes(fh.tell(), digits=2)} of {format_bytes(size, digits=2)}",
                        hint="the partial file is kept: run the same pull again to resume",
                    )
                fh.write(chunk)
                received += len(chunk)
                meter.update(fh.tell())
                if fh.tell() > size:
                    raise DownloadError(f"the server sent more than the expected {size} bytes")
    return received


def backoff(
    failures: int, why: str, t: Transfer, *, limit: int | None = None, meter: Meter | None = None
) -> int:
    """Count a failed attempt, wait (exponentially, cancellable), or raise when attempts are used up."""
    failures += 1
    limit = min(limit or t.options.max_attempts, t.options.max_attempts)
    if failures >= limit:
        raise HubUnreachable(
            f"download of {t.what} failed after {failures} attempts ({why})",
            hint="run the same pull again: it resumes where it stopped",
        )
    delay = min(t.options.backoff_s * 2 ** (failures - 1), t.options.max_backoff_s)
    note = f"{why}; retrying in {delay:.0f}s ({failures}/{limit - 1})"
    if meter is not None:  # keep the byte counts, so a progress bar does not jump back to zero
        meter.note(note)
    else:
        t.report(DownloadProgress(t.file, 0, None, note=note))
    if t.cancel is not None:
        if t.cancel.wait(delay):
            raise DownloadCancelled(
                f"download of {t.file} cancelled", hint="run the same pull again to resume"
            )
    else:
        time.sleep(delay)
    return failures


def http_library() -> Any:
    """The HTTP library huggingface_hub's session is built on (httpx2 in 2.x, httpx in 1.x)."""
    try:
        import httpx2

        return httpx2
    except ImportError:  # pragma: no cover - huggingface_hub 1.x
        import httpx

        return httpx


def is_transient(exc: Exception) -> bool:
    httpx = http_library()
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def protocol_error(exc: Exception, what: str, endpoint: str) -> DownloadError | None:
    """One line for an HTTP-level failure that no retry mends (a redirect loop, a malformed answer), else None."""
    httpx = http_library()
    if isinstance(exc, httpx.TooManyRedirects):
        return DownloadError(f"{endpoint} redirected the request for {what} in a loop (more than 20 redirects)",
                             hint="check HF_ENDPOINT: the server or a proxy in between is misconfigured")  # fmt: skip
    if isinstance(exc, httpx.HTTPError) and not is_transient(exc):
        return DownloadError(
            f"{endpoint} gave an unusable answer for {what}: {reason(exc)}", hint="check HF_ENDPOINT"
        )
    return None


def http_status(exc: Any) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


# --------------------------------------------------------------------------- progress


class Meter:
    """Turns byte counts into throttled DownloadProgress reports with speed (last ~5 s) and ETA."""

    def __init__(self, file: str, total: int, report: Callable[[DownloadProgress], None], *, start: int = 0,
                 phase: Phase = "download"):  # fmt: skip
        self.base = DownloadProgress(file, start, total, phase=phase, resumed_from=start)
        self.report = report
        self.samples: list[tuple[float, int]] = [(time.monotonic(), start)]
        self.last_emit = 0.0
        self.current = start

    def position(self, n: int) -> None:
        """The file was rewound (the server ignored Range): restart the speed window."""
        if n < self.current:
            self.samples = [(time.monotonic(), n)]
        self.current = n

    def note(self, text: str) -> None:
        self.report(replace(self.base, downloaded_bytes=self.current, note=text))

    def update(self, n: int, force: bool = False) -> None:
        now = time.monotonic()
        self.current = n
        self.samples.append((now, n))
        while len(self.samples) > 2 and now - self.samples[0][0] > 5.0:
            self.samples.pop(0)
        if not force and now - self.last_emit < 0.1:
            return
        self.last_emit = now
        t0, b0 = self.samples[0]
        speed = (n - b0) / (now - t0) if now > t0 and n > b0 else None
        total = self.base.total_bytes
        eta = (total - n) / speed if speed and total else None
        self.report(replace(self.base, downloaded_bytes=n, speed_bps=speed, eta_s=eta))

    def done(self, n: int) -> None:
        self.update(n, force=True)
