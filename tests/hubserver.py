"""A small Hugging Face–compatible file server for download tests, with injectable faults and byte counters.

It speaks the parts of the hub protocol huggingface_hub 2.4 uses for a file download:
- `HEAD|GET /{repo}/resolve/{revision}/{file}`: ETag, X-Linked-Etag (the LFS sha256), X-Linked-Size,
  X-Repo-Commit, Content-Length, Accept-Ranges; GET honours `Range: bytes=N-` with 206 + Content-Range.
  With `cdn=True` the resolve URL answers 302 to a second origin (like the hub's signed CDN URLs).
- `GET /api/models/{repo}/tree/{revision}`: the JSON file listing (`HfApi.list_repo_tree` / `list_repo_files`).
- `GET /api/models/{repo}` and `/api/models/{repo}/revision/{revision}`: minimal model info.
Errors carry the hub's `X-Error-Code` header so huggingface_hub raises its own exception classes.

Faults are queued per request (`server.fault("drop", after_bytes=...)`) and each one is used up by the first
request it matches. A file can also be made hostile for good (`server.hostile(repo, name, ...)`): a commit or ETag
that is a path (traversal), a size it announces but never sends, empty 206 answers, a redirect to itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from vibelocal.models.catalog import Catalog

FaultKind = Literal["drop", "corrupt", "404", "401", "403", "500", "stall"]
CHUNK = 64 * 1024


@dataclass
class Fault:
    """One injected failure. `drop`/`stall` send `after_bytes` body bytes first; `corrupt` flips one byte."""

    kind: FaultKind
    method: Literal["GET", "HEAD", "ANY"] = "GET"
    after_bytes: int = 0
    offset: int | None = None
    """`corrupt`: the file offset whose byte is flipped (default: the middle of the file)."""
    stall_s: float = 30.0
    file: str | None = None
    """Only requests for this file name match (default: any)."""


@dataclass
class RepoFile:
    name: str
    path: Path
    size: int
    sha256: str
    etag: str | None = None
    """Hostile: sent as ETag and X-Linked-Etag instead of the sha256."""
    announce_size: int | None = None
    """Hostile: the size announced (X-Linked-Size, Content-Length); only the real bytes are sent, then it hangs up."""
    empty_206: bool = False
    """Hostile: every ranged GET gets a 206 with a well-formed Content-Range and no bytes."""
    redirect_loop: bool = False
    """Hostile: HEAD and GET answer 302 to the same URL, forever."""


@dataclass
class Repo:
    name: str
    commit: str
    files: dict[str, RepoFile] = field(default_factory=dict)
    gated: bool = False


@dataclass
class Counters:
    """What the server did; tests assert on these."""

    body_bytes: int = 0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Range header)."""

    def gets(self, file: str | None = None) -> list[tuple[str, str, str | None]]:
        return [
            r
            for r in self.requests
            if r[0] == "GET" and "/resolve/" in r[1] and (not file or r[1].endswith(file))
        ]


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+)/(?P<file>.+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)/?$")
_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?/?$")


class HubServer:
    """Threaded HTTP server on 127.0.0.1 (random port). Use as a context manager; `endpoint` is its base URL."""

    def __init__(self, *, cdn: bool = False, token: str | None = None):
        self.repos: dict[str, Repo] = {}
        self.counters = Counters()
        self.token = token
        """When set, gated repos accept only `Authorization: Bearer <token>`."""
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._cdn = cdn
        self.cdn_endpoint: str | None = None
        self.endpoint = ""
        self.closed_event = threading.Event()

    # ------------------------------------------------------------------ setup

    def add_file(self, repo: str, name: str, path: Path, *, commit: str | None = None) -> RepoFile:
        data_hash = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                data_hash.update(block)
        entry = RepoFile(name=name, path=path, size=path.stat().st_size, sha256=data_hash.hexdigest())
        r = self.repos.setdefault(repo, Repo(repo, commit or hashlib.sha1(repo.encode()).hexdigest()))
        r.files[name] = entry
        return entry

    def hostile(self, repo: str, name: str, **changes) -> RepoFile:
        """Make one served file lie for good (see RepoFile's hostile fields); a commit change applies to its repo."""
        if "commit" in changes:
            self.repos[repo].commit = changes.pop("commit")
        entry = self.repos[repo].files[name]
        for key, value in changes.items():
            setattr(entry, key, value)
        return entry

    def set_gated(self, repo: str, gated: bool = True) -> None:
        self.repos[repo].gated = gated

    def fault(self, kind: FaultKind, **kwargs) -> Fault:
        f = Fault(kind, **kwargs)
        with self._lock:
            self._faults.append(f)
        return f

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = Counters()

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, method: str, file: str | None) -> Fault | None:
        with self._lock:
            for i, f in enumerate(self._faults):
                if f.method in (method, "ANY") and (f.file is None or f.file == file):
                    return self._faults.pop(i)
        return None

    def _count(self, method: str, path: str, rng: str | None) -> None:
        with self._lock:
            self.counters.requests.append((method, path, rng))

    def _add_bytes(self, n: int) -> None:
        with self._lock:
            self.counters.body_bytes += n

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> HubServer:
        handler = _make_handler(self)
        main = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        main.daemon_threads = True
        self._servers.append(main)
        self.endpoint = f"http://127.0.0.1:{main.server_address[1]}"
        if self._cdn:
            cdn = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            cdn.daemon_threads = True
            self._servers.append(cdn)
            self.cdn_endpoint = f"http://127.0.0.1:{cdn.server_address[1]}"
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc) -> None:
        self.closed_event.set()
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()


def _make_handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
            return

        # -------------------------------------------------------------- helpers

        def _error(self, status: int, code: str | None = None, message: str = "") -> None:
            body = json.dumps({"error": message or code or str(status)}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            if message:
                self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, obj) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self, repo: Repo) -> bool:
            if not repo.gated:
                return True
            return hub.token is not None and self.headers.get("Authorization") == f"Bearer {hub.token}"

        def _lookup(self, repo_name: str, file: str | None) -> tuple[Repo, RepoFile | None] | None:
            repo = hub.repos.get(repo_name)
            if repo is None:
                self._error(401, "RepoNotFound", "Repository not found")  # what the hub answers anonymously
                return None
            if not self._authorized(repo):
                self._error(401, "GatedRepo", "Access to model is restricted, you must be authenticated")
                return None
            if file is None:
                return repo, None
            entry = repo.files.get(file)
            if entry is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return repo, entry

        # -------------------------------------------------------------- verbs

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_GET(self) -> None:
            self._dispatch("GET")

        def _dispatch(self, method: str) -> None:
            raw = urlsplit(self.path).path
            path = unquote(raw)
            hub._count(method, path, self.headers.get("Range"))
            if m := _RESOLVE.match(raw):  # matched before unquoting: a hostile commit may hold %2F
                file = unquote(m["file"])
                fault = hub._take_fault(method, file)
                if fault and self._plain_fault(fault):
                    return
                found = self._lookup(unquote(m["repo"]), file)
                if found is None:
                    return
                repo, entry = found
                assert entry is not None
                if unquote(m["rev"]) not in ("main", repo.commit):
                    self._error(404, "RevisionNotFound", "Invalid rev id")
                    return
                if entry.redirect_loop:
                    self._redirect_to_itself()
                    return
                if hub.cdn_endpoint and self.server is hub._servers[0]:
                    self._redirect(repo, entry)
                    return
                self._serve_file(method, repo, entry, fault)
            elif (m := _CDN.match(path)) and hub.cdn_endpoint:
                repo = hub.repos[m["repo"]]
                entry = repo.files[m["file"]]
                if self.headers.get("Authorization"):
                    self._error(400, None, "the CDN must never receive the hub token")
                    return
                self._serve_file(method, repo, entry, hub._take_fault(method, m["file"]))
            elif m := _TREE.match(path):
                found = self._lookup(m["repo"], None)
                if found:
                    self._json([_tree_entry(f) for f in found[0].files.values()])
            elif m := _INFO.match(path):
                found = self._lookup(m["repo"], None)
                if found:
                    repo = found[0]
                    self._json(
                        {
                            "id": repo.name,
                            "modelId": repo.name,
                            "sha": repo.commit,
                            "private": False,
                            "gated": repo.gated,
                            "siblings": [{"rfilename": f} for f in repo.files],
                        }
                    )
            else:
                self._error(404, None, "no such endpoint")

        def _plain_fault(self, fault: Fault) -> bool:
            """Faults answered before any lookup; returns True when the request is done."""
            if fault.kind in ("404", "401", "403", "500"):
                status = int(fault.kind)
                code = {"404": "EntryNotFound", "401": "GatedRepo"}.get(fault.kind)
                self._error(status, code, "injected fault")
                return True
            return False

        def _redirect(self, repo: Repo, entry: RepoFile) -> None:
            self.send_response(302)
            self.send_header("Location", f"{hub.cdn_endpoint}/cdn/{repo.name}/{entry.name}?signature=test")
            self._file_headers(repo, entry)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _redirect_to_itself(self) -> None:
            self.send_response(302)
            self.send_header("Location", urlsplit(self.path).path)  # relative, as the hub's own redirects are
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _file_headers(self, repo: Repo, entry: RepoFile) -> None:
            etag = entry.etag if entry.etag is not None else entry.sha256
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(entry.announce_size or entry.size))
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("Accept-Ranges", "bytes")

        def _serve_file(self, method: str, repo: Repo, entry: RepoFile, fault: Fault | None) -> None:
            start = 0
            size = entry.announce_size or entry.size
            rng = self.headers.get("Range")
            if rng and (rm := re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())):
                start = int(rm[1])
                if entry.empty_206:
                    self._empty_206(repo, entry, start, size)
                    return
                if start >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(206 if start else 200)
            self._file_headers(repo, entry)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.send_header("Content-Length", str(size - start))
            self.send_header("Content-Type", "application/octet-stream")
            if (fault and fault.kind in ("drop", "stall")) or entry.announce_size:
                self.send_header("Connection", "close")
            self.end_headers()
            if method == "HEAD":
                return
            self._send_body(entry, start, fault)
            if entry.announce_size:
                self.close_connection = True  # short of what it announced: hang up

        def _empty_206(self, repo: Repo, entry: RepoFile, start: int, size: int) -> None:
            self.send_response(206)
            self._file_headers(repo, entry)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send_body(self, entry: RepoFile, start: int, fault: Fault | None) -> None:
            limit = fault.after_bytes if fault and fault.kind in ("drop", "stall") else None
            flip = None
            if fault and fault.kind == "corrupt":
                flip = fault.offset if fault.offset is not None else entry.size // 2
            sent = 0
            pos = start
            try:
                with entry.path.open("rb") as fh:
                    fh.seek(start)
                    while pos < entry.size:
                        n = CHUNK if limit is None else min(CHUNK, limit - sent)
                        if n <= 0:
                            break
                        block = fh.read(n)
                        if not block:
                            break
                        if flip is not None and pos <= flip < pos + len(block):
                            b = bytearray(block)
                            b[flip - pos] ^= 0xFF
                            block = bytes(b)
                        self.wfile.write(block)
                        hub._add_bytes(len(block))
                        sent += len(block)
                        pos += len(block)
                    self.wfile.flush()
                if fault and fault.kind == "stall":
                    # Keep the connection open, sending nothing, until the client gives up or the test ends.
                    deadline = time.monotonic() + fault.stall_s
                    while time.monotonic() < deadline and not hub.closed_event.wait(0.05):
                        pass
                if limit is not None:
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def _tree_entry(f: RepoFile) -> dict:
    git_oid = hashlib.sha1(f.name.encode()).hexdigest()  # the git pointer's oid; only its shape matters here
    return {
        "type": "file",
        "oid": git_oid,
        "size": f.size,
        "path": f.name,
        "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134},
    }


# --------------------------------------------------------------------------- a test model manifest for the served file

REPO = "test-org/smol-GGUF"


def manifest(repos: list[str], file: str, size: int, sha256: str | None = None) -> str:
    """A `smol-test` manifest (SmolLM2's real architecture) whose GGUF sources are `repos`."""
    pin = f', sha256 = "{sha256}"' if sha256 else ""
    sources = "\n".join(
        f'[[sources]]\nrepo = "{r}"\nfiles = [{{ quant = "Q4_1", file = "{file}", size_bytes = {size}{pin} }}]\n'
        for r in repos
    )
    return f"""name = "smol-test"
display_name = "SmolLM2 test"
default_quant = "Q4_1"
[architecture]
name = "llama"
n_layers = 30
hidden_size = 576
n_heads = 9
n_kv_heads = 3
head_dim = 64
vocab_size = 49152
context_length = 8192
{sources}"""


def write_manifest(text: str) -> Catalog:
    """Install a manifest into the user's models folder (the Catalog reads it) and return the catalog."""
    from vibelocal.models.catalog import Catalog
    from vibelocal.paths import get_paths

    folder = get_paths().config_dir / "models"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "smol-test.toml").write_text(text)
    return Catalog(extra_dirs=[folder])
