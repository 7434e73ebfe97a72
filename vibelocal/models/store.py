"""Where models live: the registry of verified models, the Hugging Face cache layout, and user-given GGUF paths."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from vibelocal.errors import ModelLoadError, ModelUnavailableError
from vibelocal.models.cachepath import (
    UnsafePathError,
    check_blob_name,
    check_commit,
    check_hub_file,
    ensure_inside,
)
from vibelocal.models.catalog import Catalog, ModelRef
from vibelocal.paths import Paths, get_paths
from vibelocal.types import InstalledModel

REGISTRY_VERSION = 1
REGISTRY_MAX_BYTES = 16 * 1024 * 1024
"""A registry of thousands of models is a few MB; anything bigger is not one and is set aside unread."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")

# --------------------------------------------------------------------------- the registry


class Registry:
    """A JSON file listing verified models.

    Every write is load-modify-replace under a file lock (`models.json.lock`), so parallel pulls never lose an
    entry; the replace is atomic, so readers need no lock. A corrupt, oversized or too deeply nested file is set
    aside (`models.json.corrupt-<time>`, kept for inspection) and rebuilt empty.
    """

    def __init__(self, paths: Paths | None = None):
        self.paths = paths or get_paths()
        self.file = self.paths.registry_file
        self.recovered_from: Path | None = None
        """Set when a corrupt registry was moved to this path (its models are re-verified on the next pull)."""

    # ------------------------------------------------------------------ reading

    def _load(self) -> list[dict]:
        if not self.file.exists():
            return []
        try:
            if self.file.stat().st_size > REGISTRY_MAX_BYTES:
                raise ValueError("too big to be a model registry")
            data = json.loads(self.file.read_text(encoding="utf-8"))
            entries = data["models"] if isinstance(data, dict) else None
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ValueError("no models list")
            for e in entries:
                InstalledModel.model_validate({k: v for k, v in e.items() if k != "verified_at"})
            return entries
        except (
            OSError,
            UnicodeDecodeError,
            ValueError,
            KeyError,
            TypeError,
            ValidationError,
            RecursionError,
        ):
            # ValueError covers ints longer than Python parses; RecursionError, JSON nested thousands deep
            bad = self.file.with_name(f"{self.file.name}.corrupt-{time.time_ns()}")
            with contextlib.suppress(OSError):
                self.file.replace(bad)
                self.recovered_from = bad
            return []

    def _entries(self) -> list[tuple[InstalledModel, dict]]:
        out = []
        for e in self._load():
            model = InstalledModel.model_validate({k: v for k, v in e.items() if k != "verified_at"})
            out.append((model, e))
        return out

    def list(self) -> list[InstalledModel]:
        """Registered models whose file still exists with the recorded size."""
        return [m for m, _ in self._entries() if _intact(m)]

    def all(self) -> list[InstalledModel]:
        """Every registered model, including those whose file has gone or changed size (for `models verify`)."""
        return [m for m, _ in self._entries()]

    def find_local(self, name: str | None) -> InstalledModel | None:
        """The registered local GGUF (added with `models add`, not from a hub) called `name`."""
        if not name:
            return None
        return next((m for m in reversed(self.list()) if m.repo is None and _same(m.name, name)), None)

    def verified_at(self, model: InstalledModel) -> str | None:
        for m, raw in self._entries():
            if m.path == model.path:
                return raw.get("verified_at")
        return None

    def find(self, ref: ModelRef, quant: str | None = None) -> InstalledModel | None:
        """The installed model `ref` names.

        Aliases: a quant written in the ref is required; otherwise `quant` is preferred, then the manifest's
        default, then the most recently verified one. Hub refs: that repo and file (or quant). Paths: that file.
        """
        models = self.list()
        if ref.kind == "path":
            target = _resolved(ref.path)
            return next((m for m in models if _resolved(m.path) == target), None)
        if ref.kind == "alias" and ref.spec is not None:
            mine = [m for m in models if m.name == ref.spec.name]
            if ref.quant:
                mine = [m for m in mine if _same(m.quant, ref.quant)]
            for wanted in (ref.quant, quant, ref.spec.default_quant):
                if wanted and (hit := [m for m in mine if _same(m.quant, wanted)]):
                    return hit[-1]
            return mine[-1] if mine else None
        in_repo = [m for m in models if _same(m.repo, ref.repo)]
        if ref.kind == "hub_file":
            return next((m for m in reversed(in_repo) if m.file == ref.file), None)
        wanted = ref.quant or quant
        if wanted:
            in_repo = [
                m for m in in_repo if _same(m.quant, wanted) or wanted.lower() in (m.file or "").lower()
            ]
        return in_repo[-1] if in_repo else None

    # ------------------------------------------------------------------ writing

    def add(self, model: InstalledModel) -> None:
        """Record a verified model, or a local file hashed once (replacing any entry with the same path)."""
        if not model.verified and not model.sha256:
            raise ValueError("only verified or hashed models go into the registry")
        record = model.model_dump(mode="json")
        record["verified_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._locked():
            entries = [e for e in self._load() if e.get("path") != str(model.path)]
            entries.append(record)
            self._save(entries)

    def remove(self, ref: ModelRef) -> list[InstalledModel]:
        """Forget every entry `ref` names (all quants of an alias without one) and any whose file is gone."""
        doomed: list[InstalledModel] = []
        with self._locked():
            while (hit := self.find(ref)) is not None:
                doomed.append(hit)
                self._save([e for e in self._load() if e.get("path") != str(hit.path)])
            if doomed:
                self._save([raw for m, raw in self._entries() if _intact(m)])
        return doomed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold `models.json.lock` (a filelock shared by every vibelocal process using this data folder)."""
        from filelock import FileLock

        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.file.with_name(self.file.name + ".lock")), thread_local=False)
            lock.acquire()
        except OSError as exc:
            raise ModelUnavailableError(
                f"cannot lock the model registry {self.file}: {exc.strerror or exc}",
                hint="check that its folder is writable (VIBELOCAL_HOME moves it)",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _save(self, entries: list[dict]) -> None:
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(
                json.dumps({"version": REGISTRY_VERSION, "models": entries}, indent=2), encoding="utf-8"
            )
            tmp.replace(self.file)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ModelUnavailableError(
                f"cannot save the model registry {self.file}: {exc.strerror or exc}",
                hint="free some space or fix the folder's permissions, then run the same pull again",
            ) from None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _resolved(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python before 3.13)
        return path


def _intact(model: InstalledModel) -> bool:
    try:
        return model.path.is_file() and model.path.stat().st_size == model.size_bytes
    except OSError:
        return False


# --------------------------------------------------------------------------- a user-given GGUF file


def model_from_path(path: Path, *, catalog: Catalog | None = None) -> InstalledModel:
    """Check a .gguf the user named and describe it. Unverified: hashing GBs on every start is too slow."""
    from vibelocal.models.gguf import read_gguf_info

    path = Path(path).expanduser()
    _check_local_path(path)
    try:
        read_gguf_info(
            path
        )  # bad magic, unsupported version, truncated header or data: ModelLoadError (exit 5)
    except ModelLoadError as exc:
        if "not a GGUF model file" in exc.message and exc.hint == "download it again":
            exc.hint = "check the path: it should name a .gguf model file"  # it was never a model
        raise
    catalog = catalog or Catalog(extra_dirs=[get_paths().config_dir / "models"])
    hit = catalog.spec_for_file(path.name)
    return InstalledModel(
        path=path.resolve(),
        size_bytes=path.stat().st_size,
        name=hit[0].name if hit else None,
        quant=hit[1] if hit else quant_from_name(path.name),
        verified=False,
    )


def _check_local_path(path: Path) -> None:
    """A user-given model path must end at a regular file: say what it is instead (never read a FIFO)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            raise ModelUnavailableError(f"model path {path} is a broken symbolic link (to {target}, which does not exist)",
                                        hint="check the path") from None  # fmt: skip
        raise ModelUnavailableError(f"model file {path} does not exist", hint="check the path") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelUnavailableError(
                f"model path {path} is a symbolic link loop", hint="check the path"
            ) from None
        raise ModelUnavailableError(
            f"cannot read model path {path}: {exc.strerror or exc}", hint="check the path"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelLoadError(f"{path} is a directory, not a GGUF model file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise ModelLoadError(f"{path} is {kind}, not a GGUF model file", hint="name a .gguf file")


_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d_[A-Z0-9_]+|Q\d_\d|F16|BF16|F32)(?![A-Za-z0-9])", re.IGNORECASE
)


def quant_from_name(name: str) -> str | None:
    """The quantization written in a GGUF file name (`x.Q4_K_M.gguf` -> `Q4_K_M`)."""
    m = _QUANT_IN_NAME.search(name)
    return m.group(1).upper() if m else None


# --------------------------------------------------------------------------- the Hugging Face cache


def hf_cache_dir() -> Path:
    """The hub cache folder, resolved as huggingface_hub.constants resolves HF_HUB_CACHE, but on every call.

    huggingface_hub fixes its constants when it is first imported; vibelocal reads the environment each time (tests
    and long-lived sessions change it, and `vibelocal --help` never imports huggingface_hub) and passes the folder
    explicitly to every hub call. The order is huggingface_hub's: HF_HUB_CACHE, then the legacy
    HUGGINGFACE_HUB_CACHE, then $HF_HOME/hub, then $XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub,
    with `~` and `$VARS` expanded. One deliberate difference: a variable set to the empty string counts as unset
    (huggingface_hub would put the cache in whatever the current directory is).
    """
    env = os.environ

    def expand(path: str) -> str:
        return os.path.expandvars(os.path.expanduser(path))

    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = expand(env.get("HF_HOME") or os.path.join(xdg, "huggingface"))
    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(expand(hub))


@dataclass(frozen=True)
class CachedFile:
    """One repo file in the hub cache: `blobs/<etag>` holds the bytes, `snapshots/<commit>/<file>` links to it.

    Every part is checked on creation (repo id and file name as huggingface_hub checks them, a 40-hex commit, a
    sha256 or git-sha1 blob name), and every path is checked to resolve inside the cache before it is written,
    linked or deleted: these values come from a server.
    """

    cache_dir: Path
    repo: str
    file: str
    etag: str
    commit: str

    def __post_init__(self) -> None:
        check_hub_file(self.repo, self.file)
        check_blob_name(self.etag, f"{self.repo}/{self.file}")
        check_commit(self.commit, f"{self.repo}/{self.file}")

    @property
    def storage(self) -> Path:
        return self.cache_dir / ("models--" + self.repo.replace("/", "--"))

    @property
    def blob(self) -> Path:
        return self.storage / "blobs" / self.etag

    @property
    def incomplete(self) -> Path:
        """A partial download; the name older huggingface_hub releases used too, so their partials resume."""
        return self.storage / "blobs" / f"{self.etag}.incomplete"

    @property
    def pointer(self) -> Path:
        return self.storage / "snapshots" / self.commit / self.file

    @property
    def lock(self) -> Path:
        """The lock huggingface_hub takes for this blob, so it and vibelocal never write it at once."""
        return self.cache_dir / ".locks" / self.storage.name / f"{self.etag}.lock"

    def check_inside(self, *more: Path) -> None:
        """Raise UnsafePathError unless every path this file uses resolves inside the cache."""
        ensure_inside(
            self.cache_dir, self.storage, self.blob, self.incomplete, self.pointer, self.lock, *more
        )

    def link(self, revision: str) -> None:
        """Point the snapshot at the blob (relative symlink, or move where symlinks fail) and record the ref.

        The link is made under a temporary name and renamed over the old one, so two pulls linking the same file
        at once both succeed.
        """
        ref = self.storage / "refs" / revision
        self.check_inside(ref)
        self.pointer.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pointer.with_name(f".{self.pointer.name}.{os.getpid()}.{threading.get_ident()}.link")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            os.symlink(os.path.relpath(self.blob, self.pointer.parent), tmp)
            os.replace(tmp, self.pointer)
        except OSError:  # no symlinks (Windows without developer mode): huggingface_hub moves the blob too
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            self.blob.replace(self.pointer)
        if revision != self.commit:
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(self.commit)

    def remove(self) -> None:
        """Delete the snapshot link and the blob (a bad or unwanted file)."""
        self.check_inside()
        for p in (self.pointer, self.blob):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def cached_file_for(path: Path, cache_dir: Path) -> CachedFile | None:
    """Describe a snapshot path inside the hub cache (None for files elsewhere, or that do not look like ours)."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(cache_dir))
    except ValueError:
        return None
    parts = rel.parts
    if len(parts) < 4 or not parts[0].startswith("models--") or parts[1] != "snapshots":
        return None
    repo = parts[0][len("models--") :].replace("--", "/", 1)
    blob = Path(os.path.realpath(path))
    if blob.parent.name != "blobs":
        return None
    try:
        return CachedFile(Path(cache_dir), repo, "/".join(parts[3:]), blob.name, parts[2])
    except UnsafePathError:
        return None


def delete_model_file(model: InstalledModel, cache_dir: Path | None = None) -> bool:
    """Delete a registered model's bytes: in the hub cache, its snapshot link and blob. True if anything went."""
    cached = cached_file_for(model.path, cache_dir or hf_cache_dir())
    if cached is None:
        return False
    existed = cached.pointer.is_symlink() or cached.pointer.exists()
    cached.remove()
    return existed


def expected_digest(etag: str) -> tuple[str, str] | None:
    """(algorithm, hex) a hub ETag lets us check: an LFS sha256, or a plain git file's blob sha1."""
    etag = etag.strip('"').lower()
    if _SHA256.match(etag):
        return "sha256", etag
    if _GIT_SHA1.match(etag):
        return "git-sha1", etag
    return None


def file_digest(
    path: Path, algorithm: str, on_bytes: Callable[[int], None] | None = None, block: int = 4 << 20
) -> str:
    """sha256 of a file, or its git blob sha1; `on_bytes(n_done)` is called as it goes."""
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1()
    if algorithm == "git-sha1":
        h.update(b"blob %d\0" % path.stat().st_size)
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
            done += len(chunk)
            if on_bytes:
                on_bytes(done)
    return h.hexdigest()
