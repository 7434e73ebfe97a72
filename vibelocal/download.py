"""Fetch a model GGUF through huggingface_hub: disk check, resumable download, sha256 check, registration.

huggingface_hub 2.4's `hf_hub_download` writes each download to a process-unique temporary file and deletes it on
any failure, so a Ctrl-C, a crash or a retry-exhausted drop starts again from zero, and it never checks the sha256
of plain HTTP downloads. So vibelocal uses huggingface_hub for everything but the body loop (metadata HEAD with its
ETag / X-Linked-Etag / X-Repo-Commit handling, its HTTP session, token headers and error classes, repo listings)
and writes the bytes itself into the standard cache layout (`blobs/<etag>.incomplete`, resumed with `Range`), so
files land where every other hub-aware tool looks. Transfers are always plain HTTP (never hf_xet), which resumes.
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

from vibelocal import __version__
from vibelocal.catalog import ModelRef
from vibelocal.errors import (
    DiskSpaceError,
    DownloadError,
    ExitCode,
    IntegrityError,
    ModelUnavailableError,
    UnknownModelError,
)
from vibelocal.paths import Paths
from vibelocal.store import (
    CachedFile,
    Registry,
    expected_digest,
    file_digest,
    hf_cache_dir,
    model_from_path,
    quant_from_name,
)
from vibelocal.types import InstalledModel, ModelSpec

Phase = Literal["download", "verify", "cached"]
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


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
class Candidate:
    """One (repo, file) that would satisfy a reference, with what the manifest knows about it."""

    repo: str
    file: str
    quant: str | None = None
    sha256: str | None = None
    size_hint: int | None = None
    spec: ModelSpec | None = None


@dataclass
class _Context:
    endpoint: str
    cache_dir: Path
    offline: bool
    options: DownloadOptions
    report: Callable[[DownloadProgress], None]
    cancel: threading.Event | None
    registry: Registry
    ref_text: str = ""


def hub_endpoint() -> str:
    """HF_ENDPOINT (a mirror) read now; huggingface_hub reads it once at import."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline(setting: bool = False) -> bool:
    return setting or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def pull(
    ref: ModelRef,
    *,
    quant: str | None,
    paths: Paths,
    offline: bool = False,
    progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    options: DownloadOptions | None = None,
) -> InstalledModel:
    """Make `ref` available locally, verified, and registered; returns the installed model.

    A path is only checked (not copied or hashed). Manifest sources are tried in order; the first that works wins.
    """
    if ref.kind == "path":
        assert ref.path is not None
        return model_from_path(ref.path)
    ctx = _Context(
        endpoint=hub_endpoint(),
        cache_dir=hf_cache_dir(),
        offline=is_offline(offline),
        options=options or DownloadOptions(),
        report=progress or (lambda _p: None),
        cancel=cancel,
        registry=Registry(paths),
        ref_text=ref.raw,
    )
    candidates = candidates_for(ref, quant, ctx)
    errors: list[ModelUnavailableError] = []
    for cand in candidates:
        if errors:
            ctx.report(
                DownloadProgress(cand.file, 0, cand.size_hint, note=f"trying {cand.repo}: {errors[-1]}")
            )
        try:
            model = _fetch(cand, ctx)
        except (DiskSpaceError, DownloadCancelled):
            raise
        except ModelUnavailableError as exc:
            errors.append(exc)
            continue
        ctx.registry.add(model)
        return model
    first = errors[0]
    if len(errors) > 1:
        others = "; ".join(f"{c.repo}: {e.message}" for c, e in zip(candidates[1:], errors[1:], strict=True))
        first.hint = f"{first.hint + '; ' if first.hint else ''}also tried {others}"
    raise first


# --------------------------------------------------------------------------- resolution


def candidates_for(ref: ModelRef, quant: str | None, ctx: _Context) -> list[Candidate]:
    """The (repo, file) pairs that satisfy a reference, best first."""
    spec = ref.spec
    if ref.kind == "hub_file":
        assert ref.repo and ref.file
        qf = spec.quant_file(ref.quant) if spec and ref.quant else None
        pin = qf.sha256 if qf and qf.file == ref.file.rsplit("/", 1)[-1] else None
        quant_name = ref.quant or quant_from_name(ref.file.rsplit("/", 1)[-1])
        return [Candidate(ref.repo, ref.file, quant_name, pin, qf.size_bytes if qf else None, spec)]
    if ref.kind == "alias" and spec is not None:
        wanted = ref.quant or quant or spec.default_quant
        found = [
            Candidate(src.repo, qf.file, qf.quant, qf.sha256, qf.size_bytes, spec)
            for src in spec.sources
            if (qf := src.file_for(wanted))
        ]
        if not found:
            raise UnknownModelError(
                f"{spec.name} has no quant {wanted!r}; available: {', '.join(spec.quants)}"
            )
        return found
    assert ref.repo
    wanted = ref.quant or quant
    if spec is not None:
        src = next(s for s in spec.sources if s.repo.lower() == ref.repo.lower())
        qf = src.file_for(wanted or spec.default_quant)
        if qf:
            return [Candidate(src.repo, qf.file, qf.quant, qf.sha256, qf.size_bytes, spec)]
    files = _list_gguf(ref.repo, ctx)
    file = pick_gguf(ref.repo, files, wanted)
    return [Candidate(ref.repo, file, quant_from_name(file.rsplit("/", 1)[-1]) or wanted)]


def pick_gguf(repo: str, files: list[str], quant: str | None) -> str:
    """The single-file GGUF whose name carries `quant` (Q4_K_M when none is named, as llama.cpp's -hf does)."""
    ggufs = [f for f in files if f.lower().endswith(".gguf") and not re.search(r"-\d{5}-of-\d{5}\.gguf$", f)]
    if not ggufs:
        raise DownloadError(
            f"{repo} has no single-file .gguf model", hint="name a file: OWNER/REPO/FILE.gguf"
        )
    if quant is None and len(ggufs) == 1:
        return ggufs[0]
    q = re.escape(quant or "Q4_K_M")
    exact = [
        f for f in ggufs if re.search(rf"(?<![A-Za-z0-9]){q}(?![A-Za-z0-9])", f.rsplit("/", 1)[-1], re.I)
    ]
    loose = exact or [f for f in ggufs if (quant or "Q4_K_M").lower() in f.lower()]
    if len(loose) == 1:
        return loose[0]
    names = ", ".join(f.rsplit("/", 1)[-1] for f in (loose or ggufs))
    what = f"several files match {quant!r}" if loose else f"no file matches {quant or 'Q4_K_M'!r}"
    raise UnknownModelError(f"{repo}: {what}: {names}", hint="name the quant (OWNER/REPO:QUANT) or the file")


def _list_gguf(repo: str, ctx: _Context) -> list[str]:
    if ctx.offline:
        root = ctx.cache_dir / ("models--" + repo.replace("/", "--")) / "snapshots"
        files = sorted({p.relative_to(s).as_posix() for s in root.glob("*") for p in s.rglob("*.gguf")})
        if not files:
            raise ModelUnavailableError(
                f"offline, and nothing from {repo} is downloaded", hint=_ONLINE_HINT.format(ref=ctx.ref_text)
            )
        return files
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=ctx.endpoint, library_name="vibelocal", library_version=__version__)
    try:
        return [f.path for f in api.list_repo_tree(repo, recursive=True) if isinstance(f, RepoFile)]
    except HfHubHTTPError as exc:
        raise _http_error(exc, repo, None) from None
    except Exception as exc:  # network failures of the listing call
        raise DownloadError(f"cannot list {repo} at {ctx.endpoint}: {_reason(exc)}", hint=_NET_HINT) from None


# --------------------------------------------------------------------------- one file


_ONLINE_HINT = (
    "connect and run `vibelocal pull {ref}`; offline mode comes from HF_HUB_OFFLINE=1 or `offline = true`"
)
_NET_HINT = "check the connection, or set HF_ENDPOINT to a mirror"


def _fetch(cand: Candidate, ctx: _Context) -> InstalledModel:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(
        cand.repo, cand.file, cache_dir=ctx.cache_dir, revision=ctx.options.revision
    )
    cached_path = Path(cached) if isinstance(cached, str) else None
    if ctx.offline:
        if cached_path is None:
            raise ModelUnavailableError(
                f"offline, and {cand.repo}/{cand.file} is not downloaded",
                hint=_ONLINE_HINT.format(ref=ctx.ref_text),
            )
        return _use_cached(cand, cached_path, ctx)
    try:
        meta = _metadata(cand, ctx)
    except HubUnreachable as exc:
        if cached_path is not None:
            ctx.report(
                DownloadProgress(cand.file, 0, None, note=f"hub unreachable ({exc.message}); using the cache")
            )
            return _use_cached(cand, cached_path, ctx)
        raise
    entry, algorithm, digest, size = meta
    if algorithm == "sha256" and cand.sha256 and cand.sha256.lower() != digest:
        raise IntegrityError(
            f"{cand.repo}/{cand.file} on the hub has sha256 {digest[:12]}…, the manifest pins {cand.sha256[:12]}…",
            hint="the file changed upstream; update the manifest pin",
        )
    model = InstalledModel(
        path=entry.pointer,
        size_bytes=size,
        sha256=digest if algorithm == "sha256" else None,
        name=cand.spec.name if cand.spec else None,
        quant=cand.quant,
        repo=cand.repo,
        file=cand.file,
        revision=entry.commit,
        verified=True,
    )
    known = next(
        (m for m in ctx.registry.list() if m.path == entry.pointer and m.sha256 == model.sha256), None
    )
    if known is not None and algorithm == "sha256" and entry.blob.is_file():
        ctx.report(DownloadProgress(cand.file, size, size, phase="cached"))
        return model
    if entry.blob.is_file():
        if _verify(entry.blob, algorithm, digest, cand.file, size, ctx):
            entry.link(ctx.options.revision)
            return model
        entry.remove()  # a bad blob in the cache: fetch it again
        ctx.report(
            DownloadProgress(
                cand.file, 0, size, note="the cached copy failed its checksum; downloading again"
            )
        )
    _check_disk(entry, size, ctx)
    from huggingface_hub.utils import WeakFileLock

    entry.lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(entry.lock):
        _download(entry, size, cand, ctx)
        if not _verify(entry.incomplete, algorithm, digest, cand.file, size, ctx):
            entry.incomplete.unlink(missing_ok=True)
            entry.remove()
            raise IntegrityError(
                f"{cand.file} from {cand.repo} failed its {algorithm} check and was removed (expected {digest[:12]}…)",
                hint="run the pull again; if it repeats, the server or mirror serves a bad file",
            )
        entry.incomplete.replace(entry.blob)
        entry.link(ctx.options.revision)
    return model


def _use_cached(cand: Candidate, pointer: Path, ctx: _Context) -> InstalledModel:
    """A file already in the hub cache (ours or another tool's), checked before use."""
    blob = Path(os.path.realpath(pointer))
    check = ("sha256", cand.sha256.lower()) if cand.sha256 else expected_digest(blob.name)
    if check is None:
        raise IntegrityError(f"cannot verify the cached {cand.file}: no checksum is known for it")
    size = pointer.stat().st_size
    storage = ctx.cache_dir / ("models--" + cand.repo.replace("/", "--"))
    commit = pointer.relative_to(storage / "snapshots").parts[0]
    entry = CachedFile(ctx.cache_dir, cand.repo, cand.file, blob.name, commit)
    model = InstalledModel(
        path=pointer,
        size_bytes=size,
        sha256=check[1] if check[0] == "sha256" else None,
        name=cand.spec.name if cand.spec else None,
        quant=cand.quant,
        repo=cand.repo,
        file=cand.file,
        revision=commit,
        verified=True,
    )
    if any(m.path == pointer and m.sha256 == model.sha256 for m in ctx.registry.list()):
        ctx.report(DownloadProgress(cand.file, size, size, phase="cached"))
        return model
    if not _verify(blob, check[0], check[1], cand.file, size, ctx):
        entry.remove()
        raise IntegrityError(f"the cached {cand.file} failed its {check[0]} check and was removed")
    return model


def _metadata(cand: Candidate, ctx: _Context) -> tuple[CachedFile, str, str, int]:
    """HEAD the file through huggingface_hub (retrying 5xx and network errors); returns where and what to expect."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    url = hf_hub_url(cand.repo, cand.file, revision=ctx.options.revision, endpoint=ctx.endpoint)
    failures = 0
    while True:
        try:
            meta = get_hf_file_metadata(
                url,
                timeout=ctx.options.metadata_timeout_s,
                endpoint=ctx.endpoint,
                library_name="vibelocal",
                library_version=__version__,
            )
            break
        except HfHubHTTPError as exc:
            if _status(exc) not in _RETRY_STATUS:
                raise _http_error(exc, cand.repo, cand.file) from None
            failures = _backoff(failures, f"{cand.repo}: HTTP {_status(exc)}", cand, ctx)
        except Exception as exc:
            if not _is_transient(exc):
                raise
            failures = _backoff(failures, f"{ctx.endpoint}: {_reason(exc)}", cand, ctx, limit=3)
    if not meta.commit_hash or not meta.etag:
        raise DownloadError(
            f"{ctx.endpoint} did not answer like a Hugging Face hub (no X-Repo-Commit or ETag for {cand.file})",
            hint="check HF_ENDPOINT",
        )
    check = expected_digest(meta.etag)
    if cand.sha256:
        check = ("sha256", cand.sha256.lower()) if check is None or check[0] != "sha256" else check
    if check is None:
        raise IntegrityError(
            f"the hub gives no checksum for {cand.repo}/{cand.file}; refusing an unverified model"
        )
    size = meta.size or cand.size_hint
    if not size:
        raise DownloadError(f"the hub gives no size for {cand.repo}/{cand.file}")
    entry = CachedFile(ctx.cache_dir, cand.repo, cand.file, meta.etag, meta.commit_hash)
    return entry, check[0], check[1], int(size)


def _check_disk(entry: CachedFile, size: int, ctx: _Context) -> None:
    """Refuse before writing anything when the cache's filesystem is short of the file plus a margin."""
    have = entry.incomplete.stat().st_size if entry.incomplete.exists() else 0
    need = max(size - have, 0) + ctx.options.disk_margin_bytes
    probe = entry.storage
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = (ctx.options.free_bytes or _disk_free)(probe)
    if free < need:
        raise DiskSpaceError(
            f"not enough disk space for {entry.file}: it needs {format_bytes(need)} "
            f"({format_bytes(size - have)} to download + {format_bytes(ctx.options.disk_margin_bytes)} margin), "
            f"{probe} has {format_bytes(free)} free",
            hint="free some space, or set HF_HOME to a bigger disk",
        )


def _disk_free(path: Path) -> int:
    import shutil

    return shutil.disk_usage(path).free


def _verify(path: Path, algorithm: str, digest: str, name: str, size: int, ctx: _Context) -> bool:
    if path.stat().st_size != size:
        return False
    meter = _Meter(name, size, ctx.report, phase="verify")
    actual = file_digest(path, algorithm, on_bytes=meter.update)
    meter.done(size)
    return actual == digest


# --------------------------------------------------------------------------- the transfer


_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def _download(entry: CachedFile, size: int, cand: Candidate, ctx: _Context) -> None:
    """Fill `entry.incomplete` up to `size` bytes, resuming with Range; retries drops, stalls and 5xx."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(cand.repo, cand.file, revision=entry.commit, endpoint=ctx.endpoint)
    headers = build_hf_headers(library_name="vibelocal", library_version=__version__)
    headers["Accept-Encoding"] = "identity"
    entry.incomplete.parent.mkdir(parents=True, exist_ok=True)
    first = entry.incomplete.stat().st_size if entry.incomplete.exists() else 0
    meter = _Meter(cand.file, size, ctx.report, start=first)
    if first:
        meter.note(f"resuming at {format_bytes(first)} of {format_bytes(size)}")
    failures = 0
    while True:
        have = entry.incomplete.stat().st_size if entry.incomplete.exists() else 0
        if have > size:
            entry.incomplete.unlink()
            have = 0
        if have == size:
            meter.done(size)
            return
        before = have
        try:
            _get_range(url, headers, entry.incomplete, have, size, meter, ctx)
        except HfHubHTTPError as exc:
            if _status(exc) not in _RETRY_STATUS:
                raise _http_error(exc, cand.repo, cand.file) from None
            failures = _backoff(failures, f"HTTP {_status(exc)}", cand, ctx)
        except Exception as exc:
            if not _is_transient(exc):
                raise
            got = entry.incomplete.stat().st_size - before if entry.incomplete.exists() else 0
            kept = entry.incomplete.stat().st_size if entry.incomplete.exists() else 0
            why = "stalled" if "timeout" in type(exc).__name__.lower() else "dropped"
            failures = _backoff(
                0 if got > 0 else failures, f"connection {why} at {format_bytes(kept)}", cand, ctx
            )


def _get_range(
    url: str, headers: dict[str, str], target: Path, have: int, size: int, meter: _Meter, ctx: _Context
) -> None:
    from huggingface_hub.utils import get_session, hf_raise_for_status

    httpx = _httpx()
    request_headers = dict(headers)
    if have:
        request_headers["Range"] = f"bytes={have}-"
    stall = ctx.options.stall_timeout()
    timeout = httpx.Timeout(stall, connect=min(stall, ctx.options.metadata_timeout_s))
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
            for chunk in response.iter_bytes():  # as received, so a drop loses no buffered bytes
                if ctx.cancel is not None and ctx.cancel.is_set():
                    fh.flush()
                    raise DownloadCancelled(
                        f"download of {meter.base.file} stopped at {format_bytes(fh.tell())} of {format_bytes(size)}",
                        hint="the partial file is kept: run the same pull again to resume",
                    )
                fh.write(chunk)
                meter.update(fh.tell())
                if fh.tell() > size:
                    raise DownloadError(f"the server sent more than the expected {size} bytes")


def _backoff(failures: int, why: str, cand: Candidate, ctx: _Context, limit: int | None = None) -> int:
    """Count a failed attempt, wait (exponentially, cancellable), or raise when attempts are used up."""
    failures += 1
    limit = min(limit or ctx.options.max_attempts, ctx.options.max_attempts)
    if failures >= limit:
        raise HubUnreachable(
            f"download of {cand.repo}/{cand.file} failed after {failures} attempts ({why})",
            hint="run the same pull again: it resumes where it stopped",
        )
    delay = min(ctx.options.backoff_s * 2 ** (failures - 1), ctx.options.max_backoff_s)
    ctx.report(
        DownloadProgress(cand.file, 0, None, note=f"{why}; retrying in {delay:.0f}s ({failures}/{limit - 1})")
    )
    if ctx.cancel is not None:
        if ctx.cancel.wait(delay):
            raise DownloadCancelled(
                f"download of {cand.file} cancelled", hint="run the same pull again to resume"
            )
    else:
        time.sleep(delay)
    return failures


def _httpx() -> Any:
    """The HTTP library huggingface_hub's session is built on (httpx2 in 2.x, httpx in 1.x)."""
    try:
        import httpx2

        return httpx2
    except ImportError:  # pragma: no cover - huggingface_hub 1.x
        import httpx

        return httpx


def _is_transient(exc: Exception) -> bool:
    httpx = _httpx()
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def _status(exc: Any) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _http_error(exc: Exception, repo: str, file: str | None) -> DownloadError:
    """One line for an HTTP failure, naming what was asked for and what to do."""
    from huggingface_hub.errors import GatedRepoError, RemoteEntryNotFoundError, RevisionNotFoundError

    status = _status(exc)
    what = f"{repo}/{file}" if file else repo
    token_hint = "log in on the hub, accept the model's terms, then set HF_TOKEN=<a read token> and retry"
    if isinstance(exc, GatedRepoError):
        return DownloadError(f"{repo} is gated: access denied (HTTP {status})", hint=token_hint)
    if isinstance(exc, RemoteEntryNotFoundError) or (status == 404 and file):
        return DownloadError(f"{file} not found in {repo} (HTTP 404)", hint="check the repo and file name")
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"revision not found in {repo} (HTTP {status})")
    if status in (401, 403):
        return DownloadError(
            f"access to {what} refused (HTTP {status}): the repo is private, gated, or does not exist",
            hint=token_hint,
        )
    if status == 404:
        return DownloadError(f"repository {repo} not found (HTTP 404)", hint="check the name")
    return DownloadError(f"download of {what} failed: HTTP {status}", hint=_NET_HINT)


# --------------------------------------------------------------------------- progress


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"  # pragma: no cover


class _Meter:
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
