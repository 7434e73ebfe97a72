"""`vibelocal models add PATH [--name NAME]` and `vibelocal models verify [REF]`: local GGUFs and bit rot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vibelocal.cli.output import info
from vibelocal.errors import ExitCode, ModelUnavailableError
from vibelocal.units import format_bytes

if TYPE_CHECKING:
    from vibelocal.session import Session
    from vibelocal.types import InstalledModel


class _HashProgress:
    """A line every ~25% while a big file is hashed (a 2 GB GGUF takes several seconds)."""

    def __init__(self, label: str, size: int) -> None:
        self.label, self.size, self.step = label, size, 0
        if size >= 256 << 20:
            info(f"hashing {label} ({format_bytes(size, digits=2)})…")

    def __call__(self, done: int) -> None:
        step = int(4 * done / self.size) if self.size else 4
        if self.size >= 256 << 20 and step > self.step and done < self.size:
            self.step = step
            info(f"  {100 * done // self.size}%")


def add_path(session: Session, path: Path, name: str | None = None) -> InstalledModel:
    """Register a GGUF the user has (hashed once) and return it; the file is never moved or copied."""
    from vibelocal.models.local import add_local

    path = Path(path).expanduser()
    size = path.stat().st_size if path.is_file() else 0
    return add_local(path, session.registry(), name=name, on_bytes=_HashProgress(path.name, size))


def add_ref(session: Session, ref: str | None) -> InstalledModel:
    """`pull PATH` (or a local name): register the file, keeping the name it was added under."""
    known = session.find_installed(ref)
    path = session.resolve(ref).path
    assert path is not None
    return add_path(session, path, known.name if known is not None and known.sha256 else None)


def _row(model: InstalledModel) -> str:
    return f"{model.label}\t{format_bytes(model.size_bytes, digits=2)}\tsha256 {model.sha256}\t{model.path}"


def _models_group(app: typer.Typer) -> typer.Typer:
    group = next((g.typer_instance for g in app.registered_groups if g.name == "models"), None)
    assert group is not None, "cli/pull.py registers `models` first"
    return group


def register(app: typer.Typer) -> None:
    """Add `add` and `verify` to the `models` group that cli/pull.py defines."""
    from vibelocal.cli.pull import _session as make_session

    models_app = _models_group(app)

    @models_app.command("add")
    def models_add(
        path: Path = typer.Argument(..., metavar="PATH.gguf", help="A GGUF file you already have."),
        name: str | None = typer.Option(
            None,
            "--name",
            "-n",
            metavar="NAME",
            help="What to call it (default: the catalog name, or the file name).",
        ),
    ) -> None:
        """Register a GGUF you already have: checked, hashed once (sha256), listed by `vibelocal models`.

        The file stays where it is; `models rm NAME` forgets it and never deletes it.
        """
        model = add_path(make_session(), path, name)
        typer.echo(f"added {_row(model)}")

    @models_app.command("verify")
    def models_verify(
        ref: str | None = typer.Argument(
            None, metavar="REF", help="Which model (default: every registered model)."
        ),
    ) -> None:
        """Re-hash installed model files against the sha256 recorded when they were verified or added.

        Exit codes: 0 all intact, 4 nothing matches REF, 5 a file changed, shrank or is gone.
        """
        from vibelocal.models.local import verify

        session: Session = make_session()
        targets = _targets(session, ref)
        checks = verify(targets, on_bytes=None)
        for c in checks:
            typer.echo(f"{c.state}\t{c.model.label}\t{c.model.path}")
        bad = [c for c in checks if c.bad]
        if bad:
            info(
                f"error: {len(bad)} of {len(checks)} model files no longer match their recorded checksum "
                f"(pull again, or `vibelocal models add` a good copy)"
            )
            raise typer.Exit(ExitCode.MODEL_LOAD)


def _targets(session: Session, ref: str | None) -> list[InstalledModel]:
    everything = session.registry().all()
    if ref is None:
        if not everything:
            info("no models installed; run `vibelocal pull` or `vibelocal models add PATH.gguf`")
        return everything
    parsed = session.resolve(ref)
    if parsed.kind == "alias" and parsed.spec is not None:
        hits = [
            m
            for m in everything
            if m.name == parsed.spec.name
            and (not parsed.quant or (m.quant or "").lower() == parsed.quant.lower())
        ]
    else:
        hit = session.registry().find(parsed)
        hits = [hit] if hit else []
    if not hits:
        raise ModelUnavailableError(f"no installed model matches {ref!r}", hint="see `vibelocal models`")
    return hits
