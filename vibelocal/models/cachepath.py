"""Checks on every value that becomes a path in the hub cache: commit ids, blob names, repo ids and file names.

A hub (or a mirror, or whatever HF_ENDPOINT points at) chooses the commit id (`X-Repo-Commit`), the blob name
(`ETag` / `X-Linked-Etag`) and, through its listings, file names. Each is checked for its exact shape before it is
joined to a path, and every final path is resolved and checked to lie inside the cache before anything is created,
linked or deleted, so a hostile server can never make vibelocal touch a file outside the cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vibelocal.errors import DownloadError, UnknownModelError

COMMIT = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")
BLOB_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A blob is named by its LFS sha256, or by the git blob sha1 of a small non-LFS file."""
_NAME_MAX = 255  # bytes in one path component on every common filesystem
_REF_MAX = 1024
_UNTRUSTED_HINT = "the server at HF_ENDPOINT does not behave like a Hugging Face hub; nothing was written"


class UnsafePathError(DownloadError):
    """A value from the server (or found in the cache) would name a path outside the cache; nothing was touched."""


def check_commit(value: str | None, what: str) -> str:
    """The server's commit id for `what`, which must be 40 lowercase hex digits."""
    if not isinstance(value, str) or not COMMIT.fullmatch(value):
        raise UnsafePathError(f"refusing {what}: the server's commit id {_shown(value)} is not 40 hex digits",
                              hint=_UNTRUSTED_HINT)  # fmt: skip
    return value


def check_blob_name(value: str | None, what: str) -> str:
    """A blob name (an ETag or a pinned sha256): 64 hex digits, or 40 for a git blob id."""
    if not isinstance(value, str) or not BLOB_NAME.fullmatch(value):
        raise UnsafePathError(f"refusing {what}: the blob name {_shown(value)} is not a sha256 or git blob id",
                              hint=_UNTRUSTED_HINT)  # fmt: skip
    return value


def repo_problem(repo: str) -> str | None:
    """Why `repo` is not a repo id huggingface_hub accepts (its own `validate_repo_id`), or None."""
    if len(repo) > 96:
        return "a repo id has at most 96 characters"
    if repo.count("/") != 1:
        return "a repo id is OWNER/NAME"
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except ValueError as exc:
        return _first_sentence(exc)
    return None


def file_problem(file: str) -> str | None:
    """Why `file` is not a safe repo file name (huggingface_hub's own check, plus length and NUL), or None."""
    parts = file.split("/")
    if not file or "\0" in file or "\\" in file or any(p in ("", ".") for p in parts):
        return "a file name has no empty, '.', NUL or backslash parts"
    if any(len(p.encode("utf-8", "surrogatepass")) > _NAME_MAX for p in parts) or len(file) > _REF_MAX:
        return "the file name is longer than a path allows"
    try:
        from huggingface_hub._local_folder import _validate_relative_filename
    except ImportError:  # pragma: no cover - huggingface_hub 1.x: the same rule, written here
        if ".." in parts or file.startswith("/") or re.match(r"^[A-Za-z]:", file):
            return "a file name cannot contain '..' or be absolute"
        return None
    try:
        _validate_relative_filename(file)
    except ValueError as exc:
        return _first_sentence(exc)
    return None


def check_hub_file(repo: str, file: str | None, *, source: str = "the server") -> None:
    """Refuse a repo (and file) before it becomes a path; `source` says who named it ("you": a typed ref)."""
    why = repo_problem(repo) or (file_problem(file) if file is not None else None)
    if why is None:
        return
    message = f"{_shown(f'{repo}/{file}' if file is not None else repo)} is not a valid hub {'file' if file else 'repo'}: {why}"
    if source == "you":
        raise UnknownModelError(message, hint="write OWNER/REPO/FILE.gguf, OWNER/REPO:QUANT, or a path")
    raise UnsafePathError(f"refusing a file name from {source}: {message}", hint=_UNTRUSTED_HINT)


def ensure_inside(root: Path, *paths: Path) -> None:
    """Raise unless every path, with its folders' links resolved, lies inside `root` (also resolved).

    The last component is not followed (a snapshot link is allowed to be a link); its folder is.
    """
    base = Path(os.path.realpath(root))
    for path in paths:
        where = Path(os.path.realpath(path.parent)) / path.name
        if path.name in ("", ".", "..") or not where.is_relative_to(base):
            raise UnsafePathError(f"refusing to touch {_shown(str(path))}: it lies outside the hub cache {root}",
                                  hint="a folder inside the cache links elsewhere; remove the link and retry")  # fmt: skip


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…'"


def _first_sentence(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text.split(". ")[0].rstrip(".")[:160]
