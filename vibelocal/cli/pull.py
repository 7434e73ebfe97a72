"""`vibelocal pull`, `vibelocal models [--json]`, `vibelocal models rm`, and the first-run download helper."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import typer

from vibelocal.cli.output import info, print_json
from vibelocal.errors import ExitCode, ModelUnavailableError
from vibelocal.units import format_bytes

if TYPE_CHECKING:
    from vibelocal.models.download import DownloadProgress
    from vibelocal.session import Session
    from vibelocal.types import InstalledModel


def _label(model: InstalledModel) -> str:
    name = model.name or (f"{model.repo}/{model.file}" if model.repo else model.path.name)
    return f"{name}:{model.quant}" if model.quant and model.name else name


def _is_tty() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


# --------------------------------------------------------------------------- progress on stderr


class _PlainProgress:
    """Non-TTY progress: a line at each 10% step (or every 10 s), plus every note."""

    def __init__(self) -> None:
        self.last_step = -1
        self.last_time = 0.0
        self.phase = ""

    def __call__(self, p: DownloadProgress) -> None:
        if p.note:
            info(f"{p.file}: {p.note}")
            return
        if p.phase != self.phase:
            self.phase, self.last_step = p.phase, -1
            if p.phase == "cached":
                info(f"{p.file}: already downloaded and verified")
                return
            if p.phase == "verify":
                info(f"{p.file}: verifying checksum…")
                return
        if p.phase != "download" or not p.total_bytes:
            return
        step = int(10 * p.downloaded_bytes / p.total_bytes)
        now = time.monotonic()
        if step == self.last_step and now - self.last_time < 10:
            return
        self.last_step, self.last_time = step, now
        pct = 100 * p.downloaded_bytes / p.total_bytes
        speed = f", {format_bytes(p.speed_bps, digits=2)}/s" if p.speed_bps else ""
        eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None and p.downloaded_bytes < p.total_bytes else ""
        info(
            f"{p.file}: {format_bytes(p.downloaded_bytes, digits=2)} / {format_bytes(p.total_bytes, digits=2)} ({pct:.0f}%{speed}{eta})"
        )


class _RichProgress:
    """TTY progress: a rich bar with bytes, speed and ETA; notes print above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> _RichProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, p: DownloadProgress) -> None:
        if p.note:
            self.progress.console.print(f"{p.file}: {p.note}", highlight=False)
            return
        if p.phase == "cached":
            self.progress.console.print(f"{p.file}: already downloaded and verified", highlight=False)
            return
        key = (p.file, p.phase)
        if key not in self.tasks:
            verb = "verifying" if p.phase == "verify" else "downloading"
            self.tasks[key] = self.progress.add_task(f"{verb} {p.file}", total=p.total_bytes)
        self.progress.update(self.tasks[key], completed=p.downloaded_bytes, total=p.total_bytes)


# --------------------------------------------------------------------------- the reusable helper


def pull_with_progress(session: Session, ref: str | None, *, yes: bool, quiet: bool) -> InstalledModel:
    """Fetch a model for a front end: say what and how big, ask on a TTY unless `yes`, show progress on stderr.

    With no TTY and no `yes` it refuses (exit 4) rather than start a multi-GB download nobody agreed to.
    Ctrl-C keeps the partial file (the next pull resumes it) and exits 130.
    """
    from vibelocal.models.download import DownloadCancelled

    parsed = session.resolve(ref)
    if parsed.kind == "path":  # a file the user has: the same as `models add PATH`
        from vibelocal.cli.models_cmd import add_ref

        return add_ref(session, ref)
    quant, why = session.pull_quant(parsed)
    label, size = _describe(parsed, quant)
    if why and not quiet:
        info(f"{label}: {why}")
    if not yes:
        if not _is_tty():
            raise ModelUnavailableError(
                f"{label} is not downloaded ({size})",
                hint=f"run `vibelocal pull {parsed.raw}` first, or pass --yes to download it now",
            )
        if not typer.confirm(f"Download {label} ({size})?", default=True, err=True):
            raise typer.Exit(ExitCode.MODEL_UNAVAILABLE)
    cancel = threading.Event()
    try:
        if quiet:
            return session.pull(ref, progress=None, cancel=cancel, quant=quant)
        if sys.stderr.isatty():
            with _RichProgress() as bar:
                return session.pull(ref, progress=bar, cancel=cancel, quant=quant)
        return session.pull(ref, progress=_PlainProgress(), cancel=cancel, quant=quant)
    except KeyboardInterrupt:
        raise DownloadCancelled(
            f"download of {label} interrupted",
            hint=f"the partial file is kept: `vibelocal pull {parsed.raw}` resumes it",
        ) from None


def _describe(parsed: Any, quant: str | None) -> tuple[str, str]:
    """A label and an approximate size for the confirmation line."""
    spec = parsed.spec
    if parsed.kind == "alias" and spec is not None:
        qf = spec.quant_file(quant or spec.default_quant)
        return f"{spec.display_name} {quant or spec.default_quant}", format_bytes(
            qf.size_bytes, digits=2
        ) if qf else "size unknown"
    if parsed.kind == "hub_file":
        qf = spec.quant_file(parsed.quant) if spec and parsed.quant else None
        return f"{parsed.repo}/{parsed.file}", format_bytes(
            qf.size_bytes, digits=2
        ) if qf else "size shown when it starts"
    qf = spec.quant_file(quant) if spec and quant else None
    name = f"{parsed.repo}:{quant}" if quant else str(parsed.repo)
    return name, format_bytes(qf.size_bytes, digits=2) if qf else "size shown when it starts"


# --------------------------------------------------------------------------- commands


def _session() -> Session:
    from vibelocal.config import load_settings
    from vibelocal.session import Session

    return Session(load_settings())


_PULL_REF = typer.Argument(
    None,
    metavar="REF",
    help="vibethinker-3b[:QUANT], OWNER/REPO:QUANT, OWNER/REPO/FILE.gguf, or a .gguf path. "
    "Default: the `model` setting, at the quant the planner picks.",
)


def register(app: typer.Typer) -> None:
    @app.command("pull")
    def pull_cmd(
        ref: str | None = _PULL_REF,
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before downloading."),
        quiet: bool = typer.Option(
            False, "--quiet", "-q", help="No progress output (errors still go to stderr)."
        ),
    ) -> None:
        """Download a model into the Hugging Face cache, verify its sha256, and register it.

        On a terminal it asks first (unless --yes); without one, `pull` itself is the consent and it proceeds.
        Interrupted downloads resume where they stopped.
        """
        session = _session()
        model = pull_with_progress(session, ref, yes=yes or not _is_tty(), quiet=quiet)
        state = "verified" if model.verified else f"local file, sha256 {model.sha256}"
        typer.echo(f"{_label(model)}\t{format_bytes(model.size_bytes, digits=2)}\t{state}\t{model.path}")

    models_app = typer.Typer(
        help="List installed models; `models add|verify|rm` manage them.", invoke_without_command=True
    )

    @models_app.callback()
    def models_cmd(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help='Print {"models": [...]} (see docs/models.md).'),
    ) -> None:
        """List installed, verified models (name, quant, size, path)."""
        if ctx.invoked_subcommand is not None:
            return
        from vibelocal.models.store import Registry

        session = _session()
        registry = Registry(session.paths)
        models = registry.list()
        if registry.recovered_from is not None:
            info(f"note: the model registry was unreadable and was set aside as {registry.recovered_from}")
        if as_json:
            print_json({"models": [_as_json(m, registry.verified_at(m)) for m in models]})
            return
        if not models:
            info("no models installed; run `vibelocal pull`")
            return
        rows = [
            (m.name or "-", m.quant or "-", format_bytes(m.size_bytes, digits=2), str(m.path)) for m in models
        ]
        widths = [max(len(r[i]) for r in [("NAME", "QUANT", "SIZE", "PATH"), *rows]) for i in range(3)]
        for r in [("NAME", "QUANT", "SIZE", "PATH"), *rows]:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])

    @models_app.command("rm")
    def models_rm(
        ref: str = typer.Argument(
            ...,
            metavar="REF",
            help="What to remove: an alias (all quants), NAME:QUANT, a hub ref, a local name.",
        ),
        keep_file: bool = typer.Option(
            False, "--keep-file", help="Only forget it; leave the file in the cache."
        ),
    ) -> None:
        """Remove installed models: forget them and delete their files from the Hugging Face cache."""
        from vibelocal.models.store import Registry, delete_model_file

        session = _session()
        removed = Registry(session.paths).remove(session.resolve(ref))
        if not removed:
            raise ModelUnavailableError(f"no installed model matches {ref!r}", hint="see `vibelocal models`")
        for m in removed:
            deleted = False if keep_file else delete_model_file(m)
            typer.echo(
                f"removed {_label(m)}\t{format_bytes(m.size_bytes, digits=2)}\t{'deleted' if deleted else 'kept'} {m.path}"
            )

    app.add_typer(models_app, name="models")


def _as_json(model: InstalledModel, verified_at: str | None) -> dict[str, Any]:
    return {
        "name": model.name,
        "quant": model.quant,
        "size_bytes": model.size_bytes,
        "path": str(model.path),
        "sha256": model.sha256,
        "repo": model.repo,
        "file": model.file,
        "revision": model.revision,
        "verified": model.verified,
        "verified_at": verified_at,
        "local": model.repo is None,
    }
