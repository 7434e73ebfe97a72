"""The settings screen: budget (a preset or any budget typed), temperature, model (from installed ones), show thinking; saved to config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Switch

from vibelocal.config import PRESETS, Settings, parse_budget, save_settings
from vibelocal.errors import UsageError, VibelocalError
from vibelocal.tui.wording import in_app_error
from vibelocal.types import InstalledModel

if TYPE_CHECKING:
    from vibelocal.tui.app import VibelocalApp


def model_ref(model: InstalledModel) -> str:
    """The reference that names an installed model in config.toml (a GGUF the user added: its path)."""
    if model.name and model.quant and model.repo is not None:
        return f"{model.name}:{model.quant}"
    return str(model.path)


def chosen_budget(preset: str, typed: str) -> str:
    """The budget the form names: the typed one when there is one (any budget the CLI takes), else the preset.

    Raises ValueError with a sentence for the app when the typed one is not a budget."""
    text = typed.strip()
    if not text:
        return preset
    try:
        return parse_budget(text).label
    except UsageError as exc:
        raise ValueError(in_app_error(exc)) from None


def settings_changes(
    current: Settings,
    *,
    budget: str,
    temperature: str,
    model: str,
    show_thinking: bool,
    typed_budget: str = "",
) -> dict[str, Any]:
    """What the form changes, validated; raises ValueError with a message for the user."""
    changes: dict[str, Any] = {}
    budget = chosen_budget(budget, typed_budget)
    if budget != current.budget:
        changes["budget"] = budget
    text = temperature.strip()
    value: float | None
    try:
        value = float(text) if text else None
    except ValueError:
        raise ValueError(f"temperature must be a number, not {text!r}") from None
    if value is not None and not 0.0 <= value <= 2.0:
        raise ValueError("temperature must be between 0 and 2")
    if value != current.temperature:
        changes["temperature"] = value
    if model and model != current.model:
        changes["model"] = model
    if show_thinking != current.show_thinking:
        changes["show_thinking"] = show_thinking
    return changes


def budget_label(name: str) -> str:
    tokens = PRESETS[name]
    if tokens == 0:
        return f"{name} (no thinking)"
    return f"{name} (no limit)" if tokens is None else f"{name} ({tokens // 1024}k tokens)"


class SettingsScreen(ModalScreen[dict[str, Any] | None]):
    """Edits a few settings; Save writes config.toml and returns the changes, Esc returns None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    app: VibelocalApp

    def compose(self) -> ComposeResult:
        s = self.app.session.settings
        budgets = [(budget_label(name), name) for name in PRESETS]
        if s.budget not in PRESETS:
            budgets.append((f"{s.budget} (from config)", s.budget))
        try:
            installed = self.app.session.installed()
        except VibelocalError:
            installed = []
        models = [(model_ref(m) if m.repo else f"{m.label} (your file)", model_ref(m)) for m in installed]
        if s.model not in [v for _, v in models]:
            models.insert(0, (f"{s.model} (current)", s.model))
        with VerticalScroll(classes="dialog-box settings-box"):  # scrolls to Save on a short terminal
            yield Label("Settings", classes="dialog-title")
            yield Label("Reasoning budget per turn (a typed one wins over the list)")
            with Horizontal(classes="budget-row"):
                yield Select(budgets, value=s.budget, allow_blank=False, id="budget")
                yield Input(id="budget-custom", placeholder="or type: 6k, 3000, 90s, 2m")
            yield Label("Temperature (empty: the model's own, 0.6 for VibeThinker)")
            yield Input(
                "" if s.temperature is None else str(s.temperature), id="temperature", placeholder="0.6"
            )
            yield Label("Model")
            yield Select(models, value=s.model, allow_blank=False, id="model")
            with Horizontal(classes="switch-row"):
                yield Switch(value=s.show_thinking, id="show-thinking")
                yield Label("Show thinking while it streams")
            yield Label("", id="settings-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        session = self.app.session
        try:
            changes = settings_changes(
                session.settings,
                budget=str(self.query_one("#budget", Select).value),
                temperature=self.query_one("#temperature", Input).value,
                model=str(self.query_one("#model", Select).value),
                show_thinking=self.query_one("#show-thinking", Switch).value,
                typed_budget=self.query_one("#budget-custom", Input).value,
            )
            if changes:
                save_settings(changes, paths=session.paths)
        except (ValueError, VibelocalError) as exc:
            self.query_one("#settings-error", Label).update(str(exc))
            return
        self.dismiss(changes)
