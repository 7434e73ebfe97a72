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
import errno
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vibelocal import __version__
from vibelocal.errors import (
    ConfigError,
    DiskSpaceError,
    DownloadError,
    IntegrityError,
    ModelUnavailableError,
    UnknownModelError,
)
from vibelocal.models.cachepath import (
    UnsafePathError,
    check_blob_name,
    check_commit,
    check_hub_file,
    ensure_inside,
    file_problem,
)
from vibelocal.models.catalog import ModelRef
from vibelocal.models.reach import HubOffline, is_unreachable, offline_error
from vibelocal.models.store import (
    CachedFile,
    Registry,
    expected_digest,
    file_digest,
    hf_cache_dir,
    model_from_path,
    quant_from_name,
)
from vibelocal.models.transfer import (
    RETRY_STATUS,
    DownloadCancelled,
    DownloadOptions,
    DownloadProgress,
    HubUnreachable,
    Meter,
    Transfer,
    backoff,
    fetch_resumable,
    http_status,
    is_transient,
    protocol_error,
    reason,
)
from vibelocal.paths import Paths
from vibelocal.types import InstalledModel, ModelSpec
from vibelocal.units import format_bytes

__all__ = [
    "CacheWriteError",
    "DownloadCancelled",
    "DownloadOptions",
    "DownloadProgress",
    "HubUnreachable",
    "pull",
    "pick_gguf",
]

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class Candidate:
    """One (repo, file) that would satisfy a reference, with what the manifest knows about it."""

    repo: str
    file: str
    quant: str | None = None
    sha256: str | None = None
    size_hint: int | None = None
    spec: ModelSpec | None = None
    named_by: str = "the server"
    """Who chose this repo and file name, for the message when one is unsafe."""


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

    def transfer(self, cand: Candidate) -> Transfer:
        return Transfer(cand.file, f"{cand.repo}/{cand.file}", self.options, self.report, self.cancel)


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
    check_hub_environment()
    if ref.repo:
        check_hub_file(ref.repo, ref.file, source="you")
    registry = Registry(paths)
    check_writable(registry.file.parent, "the model registry folder")
    ctx = _Context(
        endpoint=hub_endpoint(),
        cache_dir=hf_cache_dir(),
        offline=is_offline(offline),
        options=options or DownloadOptions(),
        report=progress or (lambda _p: None),
        cancel=cancel,
        registry=registry,
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
        except (DiskSpaceError, DownloadCancelled, UnsafePathError, HubOffline):
            raise
        except ModelUnavailableError as exc:
            errors.append(exc)
            continue
        ctx.registry.add(model)
        if ctx.registry.recovered_from is not None:
            note = f"the model registry was unreadable; it was set aside as {ctx.registry.recovered_from} and rebuilt"
            ctx.report(DownloadProgress(cand.file, model.size_bytes, model.size_bytes, note=note))
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
        return [Candidate(ref.repo, ref.file, quant_name, pin, qf.size_bytes if qf else None, spec, "you")]
    if ref.kind == "alias" and spec is not None:
        wanted = ref.quant or quant or spec.default_quant
        found = [
            Candidate(src.repo, qf.file, qf.quant, qf.sha256, qf.size_bytes, spec, "the model manifest")
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
            return [
                Candidate(src.repo, qf.file, qf.quant, qf.sha256, qf.size_bytes, spec, "the model manifest")
            ]
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
        listed = [f.path for f in api.list_repo_tree(repo, recursive=True) if isinstance(f, RepoFile)]
        return [
            f for f in listed if isinstance(f, str) and file_problem(f) is None
        ]  # a hostile name is never picked
    except HfHubHTTPError as exc:
        raise _http_error(exc, repo, None) from None
    except Exception as exc:  # network failures of the listing call
        if is_unreachable(exc):
            raise offline_error(ctx.endpoint) from None
        raise DownloadError(f"cannot list {repo} at {ctx.endpoint}: {reason(exc)}", hint=_NET_HINT) from None


# --------------------------------------------------------------------------- one file


_ONLINE_HINT = "use --model PATH.gguf, or go online: unset HF_HUB_OFFLINE, `vibelocal pull {ref}`"
_NET_HINT = "check the connection, or set HF_ENDPOINT to a mirror"


class CacheWriteError(DiskSpaceError):
    """Writing into the cache or the data folder failed or cannot work (disk full, read-only, I/O error)."""


def _fetch(cand: Candidate, ctx: _Context) -> InstalledModel:
    from huggingface_hub import try_to_load_from_cache

    check_hub_file(cand.repo, cand.file, source=cand.named_by)
    cached = try_to_load_from_cache(
        cand.repo, cand.file, cache_dir=ctx.cache_dir, revision=ctx.options.revision
    )
    cached_path = Path(cached) if isinstance(cached, str) else None
    if ctx.offline:
        if cached_path is None:
            raise ModelUnavailableError(
                f"offline, and {cand.file} is not downloaded",
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
    entry.check_inside()
    known = next(
        (m for m in ctx.registry.list() if m.path == entry.pointer and m.sha256 == model.sha256), None
    )
    if known is not None and algorithm == "sha256" and entry.blob.is_file():
        ctx.report(DownloadProgress(cand.file, size, size, phase="cached"))
        return model
    check_writable(ctx.cache_dir, "the Hugging Face cache", hint=_CACHE_HINT)
    with _writing(entry, size):
        if not entry.blob.is_file():
            _check_disk(entry, size, ctx)
        _install(entry, algorithm, digest, size, cand, ctx)
    return model


def _install(
    entry: CachedFile, algorithm: str, digest: str, size: int, cand: Candidate, ctx: _Context
) -> None:
    """Under the blob's lock: use the blob when it is there and good (a parallel pull may have just finished it),
    otherwise download it, verify it, and link it into the snapshot."""
    from huggingface_hub.utils import WeakFileLock

    entry.lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(entry.lock):
        if entry.blob.is_file():
            if _verify(entry.blob, algorithm, digest, cand.file, size, ctx):
                entry.link(ctx.options.revision)
                return
            entry.remove()  # a bad blob in the cache: fetch it again
            ctx.report(
                DownloadProgress(
                    cand.file, 0, size, note="the cached copy failed its checksum; downloading again"
                )
            )
            _check_disk(entry, size, ctx)
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


def _use_cached(cand: Candidate, pointer: Path, ctx: _Context) -> InstalledModel:
    """A file already in the hub cache (ours or another tool's), checked before use."""
    blob = Path(os.path.realpath(pointer))
    check = ("sha256", cand.sha256.lower()) if cand.sha256 else expected_digest(blob.name)
    if check is None:
        raise IntegrityError(f"cannot verify the cached {cand.file}: no checksum is known for it")
    storage = ctx.cache_dir / ("models--" + cand.repo.replace("/", "--"))
    try:
        commit = pointer.relative_to(storage / "snapshots").parts[0]
    except ValueError:
        raise UnsafePathError(
            f"refusing the cached {cand.file}: {pointer} is not in its snapshot folder"
        ) from None
    ensure_inside(ctx.cache_dir, pointer, blob)
    etag = blob.name if pointer.is_symlink() else check[1]  # no symlinks: the blob was moved to the snapshot
    entry = CachedFile(ctx.cache_dir, cand.repo, cand.file, etag, commit)
    size = pointer.stat().st_size
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
            if http_status(exc) not in RETRY_STATUS:
                raise _http_error(exc, cand.repo, cand.file) from None
            failures = backoff(failures, f"{cand.repo}: HTTP {http_status(exc)}", ctx.transfer(cand))
        except Exception as exc:
            if (bad := protocol_error(exc, f"{cand.repo}/{cand.file}", ctx.endpoint)) is not None:
                raise bad from None
            if is_unreachable(exc):  # no name, nothing listening: retrying will not help
                raise offline_error(ctx.endpoint) from None
            if not is_transient(exc):
                raise
            failures = backoff(failures, f"{ctx.endpoint}: {reason(exc)}", ctx.transfer(cand), limit=3)
    if not meta.commit_hash or not meta.etag:
        raise DownloadError(
            f"{ctx.endpoint} did not answer like a Hugging Face hub (no X-Repo-Commit or ETag for {cand.file})",
            hint="check HF_ENDPOINT",
        )
    what = f"{cand.repo}/{cand.file}"
    commit = check_commit(meta.commit_hash, what)
    check = expected_digest(meta.etag)
    blob_name = check[1] if check else None  # the hub's own blob name, when the ETag is a digest
    if cand.sha256:
        pin = check_blob_name(cand.sha256.lower(), f"the manifest's sha256 pin for {what}")
        check = ("sha256", pin) if check is None or check[0] != "sha256" else check
        blob_name = blob_name or pin
    if check is None or blob_name is None:
        raise IntegrityError(
            f"the hub gives no checksum for {cand.repo}/{cand.file}; refusing an unverified model"
        )
    size = meta.size or cand.size_hint
    if not size:
        raise DownloadError(f"the hub gives no size for {cand.repo}/{cand.file}")
    entry = CachedFile(ctx.cache_dir, cand.repo, cand.file, blob_name, commit)
    return entry, check[0], check[1], int(size)


_CACHE_HINT = "fix its permissions, or set HF_HOME (or HF_HUB_CACHE) to a writable folder"
_DATA_HINT = "fix its permissions, or set VIBELOCAL_HOME to a writable folder"
_HUB_INT_VARIABLES = ("HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_ETAG_TIMEOUT")


def check_hub_environment() -> None:
    """Refuse, as a config error, values huggingface_hub would crash on when it is imported (it int()s these)."""
    for name in _HUB_INT_VARIABLES:
        value = os.environ.get(name)
        if value is not None and (not re.fullmatch(r"\s*\d{1,6}\s*", value) or int(value) == 0):
            shown = value if len(value) <= 20 else value[:20] + "…"
            raise ConfigError(f"{name} must be a whole number of seconds from 1 to 999999, not {shown!r}")


def check_writable(folder: Path, what: str, *, hint: str = _DATA_HINT) -> None:
    """Refuse before any byte is fetched when `folder`, or the nearest folder above it that exists, is not writable."""
    probe = folder
    try:
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        ok = probe.is_dir() and os.access(
            probe, os.W_OK | os.X_OK
        )  # access() also says no on a read-only mount
    except OSError:
        ok = False
    if not ok:
        where = "" if probe == folder else f" ({probe} cannot be written)"
        raise CacheWriteError(f"{what} {folder} is not writable{where}", hint=hint)


@contextlib.contextmanager
def _writing(entry: CachedFile, size: int) -> Iterator[None]:
    """Turn a failed write into the cache (disk full, read-only, I/O error) into one line; partial bytes are kept."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, (ConnectionError, TimeoutError)):
            raise
        kept = entry.incomplete.stat().st_size if entry.incomplete.exists() else 0
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CacheWriteError(
                f"the disk filled up while writing {entry.file} "
                f"({format_bytes(kept, digits=2)} of {format_bytes(size, digits=2)} written)",
                hint="free some space, then run the same pull again: it resumes where it stopped",
            ) from None
        raise CacheWriteError(
            f"cannot write {entry.file} into the Hugging Face cache: {exc.strerror or reason(exc)}",
            hint=_CACHE_HINT,
        ) from None


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
            f"not enough disk space for {entry.file}: it needs {format_bytes(need, digits=2)} "
            f"({format_bytes(size - have, digits=2)} to download + {format_bytes(ctx.options.disk_margin_bytes, digits=2)} margin), "
            f"{probe} has {format_bytes(free, digits=2)} free",
            hint="free some space, or set HF_HOME to a bigger disk",
        )


def _disk_free(path: Path) -> int:
    import shutil

    return shutil.disk_usage(path).free


def _verify(path: Path, algorithm: str, digest: str, name: str, size: int, ctx: _Context) -> bool:
    if path.stat().st_size != size:
        return False
    meter = Meter(name, size, ctx.report, phase="verify")
    actual = file_digest(path, algorithm, on_bytes=meter.update)
    meter.done(size)
    return actual == digest


# --------------------------------------------------------------------------- the transfer


def _download(entry: CachedFile, size: int, cand: Candidate, ctx: _Context) -> None:
    """Fill the blob's `.incomplete` file through huggingface_hub's session, resuming what is there."""
    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import build_hf_headers

    url = hf_hub_url(cand.repo, cand.file, revision=entry.commit, endpoint=ctx.endpoint)
    headers = build_hf_headers(library_name="vibelocal", library_version=__version__)
    headers["Accept-Encoding"] = "identity"
    try:
        fetch_resumable(url, headers, entry.incomplete, size, ctx.transfer(cand))
    except HfHubHTTPError as exc:
        raise _http_error(exc, cand.repo, cand.file) from None
    except Exception as exc:
        if (bad := protocol_error(exc, f"{cand.repo}/{cand.file}", ctx.endpoint)) is not None:
            raise bad from None
        raise


def _http_error(exc: Exception, repo: str, file: str | None) -> DownloadError:
    """One line for an HTTP failure, naming what was asked for and what to do."""
    from huggingface_hub.errors import GatedRepoError, RemoteEntryNotFoundError, RevisionNotFoundError

    status = http_status(exc)
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
