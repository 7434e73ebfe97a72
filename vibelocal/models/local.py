"""GGUF files the user already has: checked with the GGUF reader, hashed once, registered; and re-hashing for rot."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vibelocal.errors import UsageError
from vibelocal.models.store import Registry, expected_digest, file_digest, model_from_path
from vibelocal.types import InstalledModel

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_name(model: InstalledModel) -> str:
    """The catalog name when the file is a known model's, else the file name without `.gguf`."""
    if model.name:
        return model.name
    stem = model.path.name[: -len(".gguf")] if model.path.name.lower().endswith(".gguf") else model.path.stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "local"


def add_local(
    path: Path,
    registry: Registry,
    *,
    name: str | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> InstalledModel:
    """Check `path` is a GGUF (ModelLoadError, exit 5, when not), hash it, and register it under `name`.

    The file stays where it is; `models rm` forgets it and never deletes it.
    """
    if name is not None and not _NAME.match(name):
        raise UsageError(
            f"bad model name {name!r}: use letters, digits, '.', '_' and '-' (no ':' or '/'), at most 64"
        )
    model = model_from_path(path)
    chosen = name or default_name(model)
    clash = registry.find_local(chosen)
    if clash is not None and clash.path != model.path:
        raise UsageError(
            f"the name {chosen!r} is already used by {clash.path}", hint="pick another with --name"
        )
    known = next((m for m in registry.list() if m.path == model.path and m.sha256), None)
    digest = known.sha256 if known else file_digest(model.path, "sha256", on_bytes=on_bytes)
    local = model.model_copy(update={"name": chosen, "sha256": digest})
    registry.add(local)
    return local


@dataclass(frozen=True)
class Check:
    """The outcome of re-hashing one registered model."""

    model: InstalledModel
    state: str
    """ok, changed (bit rot or edited: the hash differs), resized, missing, or unchecked (no checksum recorded)."""

    @property
    def bad(self) -> bool:
        return self.state in ("changed", "resized", "missing")


def verify(
    models: Iterable[InstalledModel], on_bytes: Callable[[InstalledModel, int], None] | None = None
) -> list[Check]:
    """Re-hash each model's file against the checksum recorded when it was verified or added."""
    out = []
    for m in models:
        out.append(Check(m, _state(m, on_bytes)))
    return out


def _state(m: InstalledModel, on_bytes: Callable[[InstalledModel, int], None] | None) -> str:
    try:
        size = m.path.stat().st_size
    except OSError:
        return "missing"
    if size != m.size_bytes:
        return "resized"
    algorithm, digest = (
        ("sha256", m.sha256)
        if m.sha256
        else (expected_digest(Path(os.path.realpath(m.path)).name) or ("", ""))
    )
    if not digest:
        return "unchecked"
    progress = (lambda n: on_bytes(m, n)) if on_bytes else None
    return "ok" if file_digest(m.path, algorithm, on_bytes=progress) == digest else "changed"
