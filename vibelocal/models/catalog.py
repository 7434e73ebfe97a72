"""Model manifests (models/*.toml, shipped in the wheel) and model references."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from vibelocal.errors import ConfigError, UnknownModelError
from vibelocal.types import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MODEL = "vibethinker-3b"

_HUB_FILE = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)/(?P<file>[^:]+\.gguf)$", re.IGNORECASE)
_HUB_QUANT = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?::(?P<quant>[\w.-]+))?$")
_ALIAS = re.compile(r"^(?P<name>[\w.-]+)(?::(?P<quant>[\w.-]+))?$")


def _builtin_manifest_dir() -> Path:
    package = resources.files("vibelocal")
    packaged = package.joinpath("_models")
    if packaged.is_dir():  # installed wheel: models/ is force-included as vibelocal/_models
        return Path(str(packaged))
    return Path(str(package)).parent / "models"  # source checkout / editable install: the repo's models/


def load_manifest(path: Path) -> ModelSpec:
    """Parse one manifest file; a malformed one is a ConfigError naming the file."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        return ModelSpec.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read model manifest {path}: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise ConfigError(f"invalid model manifest {path}: {where}: {err.get('msg')}") from exc


@lru_cache(maxsize=8)
def _load_dir(directory: str) -> tuple[ModelSpec, ...]:
    root = Path(directory)
    if not root.is_dir():
        return ()
    return tuple(load_manifest(p) for p in sorted(root.glob("*.toml")))


class Catalog:
    """The known models: built-in manifests plus any in the user's `<config>/models/` folder."""

    def __init__(self, extra_dirs: list[Path] | None = None):
        specs: dict[str, ModelSpec] = {}
        for directory in [_builtin_manifest_dir(), *(extra_dirs or [])]:
            for spec in _load_dir(str(directory)):
                specs[spec.name] = spec
        self._specs = specs

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> ModelSpec | None:
        return self._specs.get(name.lower())

    def __iter__(self):
        return iter(self._specs.values())

    def spec_for_repo(self, repo: str) -> ModelSpec | None:
        """The manifest that lists `repo` as a GGUF source, if any."""
        for spec in self._specs.values():
            if any(src.repo.lower() == repo.lower() for src in spec.sources):
                return spec
        return None

    def spec_for_file(self, file_name: str) -> tuple[ModelSpec, str] | None:
        """(manifest, quant) whose source files include `file_name`."""
        for spec in self._specs.values():
            for src in spec.sources:
                for f in src.files:
                    if f.file.lower() == file_name.lower():
                        return spec, f.quant
        return None


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference. Exactly one of (spec), (repo), (path) drives resolution."""

    raw: str
    kind: Literal["alias", "hub_quant", "hub_file", "path"]
    spec: ModelSpec | None = None
    quant: str | None = None
    repo: str | None = None
    file: str | None = None
    path: Path | None = None

    @property
    def display(self) -> str:
        if self.kind == "path":
            return str(self.path)
        if self.kind == "alias" and self.spec:
            return f"{self.spec.name}:{self.quant}" if self.quant else self.spec.name
        if self.kind == "hub_file":
            return f"{self.repo}/{self.file}"
        return f"{self.repo}:{self.quant}" if self.quant else str(self.repo)


def _looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", "./", "../", "~", ".\\", "..\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", ref))


def _exists_here(path: Path) -> bool:
    """Anything at all at `path`: a file, a folder, a FIFO, a dangling or looping symlink (so it is a path)."""
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):  # a name longer than the filesystem allows, an embedded NUL
        return False


def parse_ref(ref: str | None, catalog: Catalog | None = None) -> ModelRef:
    """Turn what a user typed into a ModelRef.

    Order: anything that exists at that path (even a broken link or a FIFO); something path-like; `OWNER/REPO/FILE.gguf`; `OWNER/REPO[:QUANT]`;
    a catalog alias `NAME[:QUANT]`; else UnknownModelError listing the known aliases.
    """
    catalog = catalog or Catalog()
    ref = (ref or DEFAULT_MODEL).strip()
    if not ref:
        ref = DEFAULT_MODEL
    candidate = Path(ref).expanduser()
    if _exists_here(candidate) or _looks_like_path(ref):
        return ModelRef(raw=ref, kind="path", path=candidate)
    if m := _HUB_FILE.match(ref):
        repo, file = m["repo"], m["file"]
        hit = catalog.spec_for_file(file.rsplit("/", 1)[-1])
        spec = catalog.spec_for_repo(repo) or (hit[0] if hit else None)
        return ModelRef(
            raw=ref, kind="hub_file", spec=spec, repo=repo, file=file, quant=hit[1] if hit else None
        )
    if (m := _HUB_QUANT.match(ref)) and "/" in ref:
        return ModelRef(
            raw=ref, kind="hub_quant", spec=catalog.spec_for_repo(m["repo"]), repo=m["repo"], quant=m["quant"]
        )
    if (m := _ALIAS.match(ref)) and (spec := catalog.get(m["name"])):
        quant = m["quant"]
        if quant:
            canonical = next((q for q in spec.quants if q.lower() == quant.lower()), None)
            if canonical is None:
                raise UnknownModelError(
                    f"{spec.name} has no quant {quant!r}; available: {', '.join(spec.quants)}"
                )
            quant = canonical
        return ModelRef(raw=ref, kind="alias", spec=spec, quant=quant)
    if ref.lower().endswith(".gguf"):
        return ModelRef(raw=ref, kind="path", path=candidate)
    known = ", ".join(catalog.names) or "none"
    raise UnknownModelError(
        f"unknown model {ref!r}; known models: {known} (or OWNER/REPO:QUANT, OWNER/REPO/FILE.gguf, a .gguf path)"
    )
