"""First run without a model: the hardware plan (which quant and why, expected speed) and the download."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, ProgressBar, Static

from vibelocal.tui import messages as m
from vibelocal.tui import workers
from vibelocal.types import HardwareProfile, ModelSpec, Plan
from vibelocal.units import format_bytes

if TYPE_CHECKING:
    from vibelocal.tui.app import VibelocalApp


def hardware_summary(hw: HardwareProfile) -> str:
    """One or two lines about the machine."""
    lines = [
        f"{hw.cpu_name}, {hw.cpu_cores_physical} cores · RAM {format_bytes(hw.ram_total_bytes)} ({format_bytes(hw.ram_available_bytes)} free)"
    ]
    for gpu in hw.gpus:
        usable = "" if gpu.usable_by_build else " (this llama.cpp build cannot use it)"
        lines.append(f"GPU: {gpu.name}, {format_bytes(gpu.memory_total_bytes)} ({gpu.backend}){usable}")
    if not hw.gpus:
        lines.append("No GPU found: the model runs on the CPU.")
    return "\n".join(lines)


def plan_summary(spec: ModelSpec | None, plan: Plan | None, label: str) -> str:
    """What will be downloaded and why: the quant, its size, expected speed, the planner's reasons."""
    if spec is None or plan is None:
        return f"vibelocal will download {label}."
    qf = spec.quant_file(plan.quant)
    size = f" ({format_bytes(qf.size_bytes)} download)" if qf else ""
    lines = [f"Recommended: {spec.display_name} {plan.quant}{size}"]
    if plan.expected_decode_tok_s:
        lines.append(
            f"Expected speed: about {plan.expected_decode_tok_s:.0f} tokens/s on {plan.backend.upper()}"
        )
    lines += [f"• {reason}" for reason in plan.reasons]
    lines += [f"Warning: {warning}" for warning in plan.warnings]
    if not plan.fits:
        lines.append(
            "Warning: this machine is short on memory for this model; it may run slowly or fail to load."
        )
    return "\n".join(lines)


class SetupScreen(Screen[bool]):
    """Shown when no model is installed; dismisses with True once a model is downloaded and verified, or a GGUF
    file the user already has is checked and registered."""

    BINDINGS = [Binding("escape", "cancel_download", "Cancel download")]
    AUTO_FOCUS = "#download"

    app: VibelocalApp

    def __init__(self) -> None:
        super().__init__()
        self._cancel: threading.Event | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="setup"):
            yield Static("Welcome to vibelocal", classes="setup-title")
            yield Static("No model is installed yet. This is what this machine can run:", classes="dim")
            yield Static("Looking at this machine…", id="hardware")
            yield Static("", id="plan")
            yield Static("Checking whether the model hub can be reached…", id="reach", classes="dim")
            yield ProgressBar(total=None, show_eta=False, id="progress")
            yield Static("", id="download-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Download", variant="primary", id="download", disabled=True)
                yield Button("Use a GGUF file I already have", id="use-file")
                yield Button("Cancel download", id="cancel", disabled=True)
                yield Button("Quit", id="quit")
            with Horizontal(id="file-row"):
                yield Input(
                    placeholder="path to a .gguf file, e.g. ~/models/VibeThinker-3B.Q4_K_M.gguf",
                    id="gguf-path",
                )
                yield Button("Add", id="add-file")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#file-row").display = False
        self.describe()
        self.check_hub()

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-reach")
    def check_hub(self) -> None:
        """Before offering Download: can the hub be reached at all? (a few seconds at most)"""
        from vibelocal.models.reach import hub_problem

        try:
            problem = hub_problem(self.app.session.settings.offline)
        except Exception as exc:  # a malformed HF_ENDPOINT, say
            problem = workers.error_line(exc)
        self.app.call_from_thread(self._show_reach, problem)

    def _show_reach(self, problem: str | None) -> None:
        note = self.query_one("#reach", Static)
        if problem is None:
            note.update("The model hub answers: the download can start.")
            self.query_one("#download", Button).disabled = self._cancel is not None
            return
        note.update(
            f"Cannot download now ({problem}). Use a GGUF file you already have, or connect (or set HF_ENDPOINT "
            "to a mirror) and restart."
        )
        self.query_one("#download", Button).label = "Download (hub unreachable)"
        self.query_one("#use-file", Button).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-plan")
    def describe(self) -> None:
        """Probe the hardware and plan the default model (off the UI thread: probing takes a moment)."""
        session = self.app.session
        try:
            hw = session.hardware()
            ref = session.resolve()
            plan = None
            if ref.spec is not None:
                from vibelocal.placement.planner import make_plan

                plan = make_plan(ref.spec, hw, session.settings)
            text = hardware_summary(hw), plan_summary(ref.spec, plan, ref.display)
        except Exception as exc:
            text = "Could not look at this machine.", workers.error_line(exc)
        self.app.call_from_thread(self._show_plan, *text)

    def _show_plan(self, hardware: str, plan: str) -> None:
        self.query_one("#hardware", Static).update(hardware)
        self.query_one("#plan", Static).update(plan)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "download":
            self.start_download()
        elif event.button.id == "cancel":
            self.action_cancel_download()
        elif event.button.id == "quit":
            self.app.exit()
        elif event.button.id == "use-file":
            self.query_one("#file-row").display = True
            self.query_one("#gguf-path", Input).focus()
        elif event.button.id == "add-file":
            self.add_file(self.query_one("#gguf-path", Input).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "gguf-path":
            event.stop()
            self.add_file(event.value)

    def add_file(self, text: str) -> None:
        if not text.strip():
            self.query_one("#download-status", Static).update("Type the path of a .gguf file first.")
            return
        self.query_one("#download-status", Static).update("Checking and hashing the file…")
        self.register_file(text.strip())

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-file")
    def register_file(self, text: str) -> None:
        """Check the file with the GGUF reader, hash it once and register it (off the UI thread: GBs to read)."""
        from pathlib import Path

        from vibelocal.models.local import add_local

        session = self.app.session
        try:
            model = add_local(Path(text).expanduser(), session.registry())
            if (
                session.find_installed() is None
            ):  # not the configured model: make it the one to use, from now on
                from vibelocal.config import save_settings

                session.settings.model = model.name or str(model.path)
                save_settings({"model": session.settings.model}, paths=session.paths)
        except Exception as exc:
            self.app.call_from_thread(self._file_failed, workers.error_line(exc))
            return
        self.app.call_from_thread(self._file_added, model)

    def _file_failed(self, error: str) -> None:
        self.query_one("#download-status", Static).update(f"That file cannot be used: {error}")

    def _file_added(self, model: object) -> None:
        self.query_one("#download-status", Static).update(f"Added {getattr(model, 'path', '')}.")
        self.dismiss(True)

    def start_download(self) -> None:
        if self._cancel is not None:
            return
        self._cancel = threading.Event()
        self.query_one("#download", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        self.query_one("#download-status", Static).update("Starting the download…")
        self.download(self._cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-download")
    def download(self, cancel: threading.Event) -> None:
        workers.download_model(self.app.session, self.post_message, cancel)

    def action_cancel_download(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.query_one("#download-status", Static).update("Cancelling…")

    def on_download_progress(self, event: m.DownloadProgress) -> None:
        bar = self.query_one("#progress", ProgressBar)
        if event.total:
            bar.update(total=event.total, progress=event.done)
        p = event.progress
        parts = [format_bytes(event.done) + (f" of {format_bytes(event.total)}" if event.total else "")]
        if p.speed_bps:
            parts.append(f"{p.speed_bps / 1024**2:.1f} MB/s")
        if p.eta_s is not None:
            parts.append(f"{int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d} left")
        if p.phase != "download":
            parts.append(p.phase)
        if p.note:
            parts.append(p.note)
        self.query_one("#download-status", Static).update(" · ".join(parts))

    def on_download_finished(self, event: m.DownloadFinished) -> None:
        self._cancel = None
        self.query_one("#download-status", Static).update(f"Installed {event.model.path.name}.")
        self.dismiss(True)

    def on_download_failed(self, event: m.DownloadFailed) -> None:
        self._cancel = None
        status = self.query_one("#download-status", Static)
        if event.cancelled:
            status.update("Download cancelled. Press Download to resume where it stopped.")
        else:
            status.update(f"Download failed: {event.error}")
        button = self.query_one("#download", Button)
        button.label = "Resume download" if event.cancelled else "Try again"
        button.disabled = False
        self.query_one("#cancel", Button).disabled = True
