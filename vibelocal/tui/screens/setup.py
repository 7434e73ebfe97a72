"""First run without a model: the hardware plan (which quant and why, expected speed) and the download."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Label, ProgressBar, Static

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
    lines += [f"⚠ {warning}" for warning in plan.warnings]
    if not plan.fits:
        lines.append("⚠ This machine is short on memory for this model; it may run slowly or fail to load.")
    return "\n".join(lines)


class SetupScreen(Screen[bool]):
    """Shown when no model is installed; dismisses with True once a model is downloaded and verified."""

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
            yield ProgressBar(total=None, show_eta=False, id="progress")
            yield Label("", id="download-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Download", variant="primary", id="download")
                yield Button("Cancel download", id="cancel", disabled=True)
                yield Button("Quit", id="quit")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self.describe()

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

    def start_download(self) -> None:
        if self._cancel is not None:
            return
        self._cancel = threading.Event()
        self.query_one("#download", Button).disabled = True
        self.query_one("#cancel", Button).disabled = False
        bar = self.query_one("#progress", ProgressBar)
        bar.display = True
        self.query_one("#download-status", Label).update("Starting the download…")
        self.download(self._cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-download")
    def download(self, cancel: threading.Event) -> None:
        workers.download_model(self.app.session, self.post_message, cancel)

    def action_cancel_download(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
            self.query_one("#download-status", Label).update("Cancelling…")

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
        self.query_one("#download-status", Label).update(" · ".join(parts))

    def on_download_finished(self, event: m.DownloadFinished) -> None:
        self._cancel = None
        self.query_one("#download-status", Label).update(f"Installed {event.model.path.name}.")
        self.dismiss(True)

    def on_download_failed(self, event: m.DownloadFailed) -> None:
        self._cancel = None
        status = self.query_one("#download-status", Label)
        if event.cancelled:
            status.update("Download cancelled. Press Download to resume where it stopped.")
        else:
            status.update(f"Download failed: {event.error}")
        button = self.query_one("#download", Button)
        button.label = "Resume download" if event.cancelled else "Try again"
        button.disabled = False
        self.query_one("#cancel", Button).disabled = True
