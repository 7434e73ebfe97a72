"""First run without a model: the setup screen shows the plan, downloads from a local hub, cancels and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hubserver import REPO, HubServer, manifest, write_manifest
from textual.widgets import Button
from tui_helpers import ANSWER, HARDWARE, THINKING, wait_for

from vibelocal.config import load_settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.models.store import Registry
from vibelocal.paths import get_paths
from vibelocal.session import Session
from vibelocal.tui.app import VibelocalApp
from vibelocal.tui.screens.setup import SetupScreen

pytestmark = pytest.mark.anyio
SIZE = (110, 36)


def text_of(screen, selector: str) -> str:
    found = screen.query(selector)  # empty until the screen has composed
    return str(found.first().render()) if found else ""


async def test_no_model_opens_setup_with_the_plan():
    session = Session(load_settings(), engine_loader=None, hardware=HARDWARE)  # vibethinker-3b, not installed
    app = VibelocalApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "Recommended" in text_of(screen, "#plan"))
        plan = text_of(screen, "#plan")
        assert "Recommended: VibeThinker-3B Q" in plan and "GB download" in plan
        assert "Expected speed: about" in plan
        assert "Test CPU, 4 cores · RAM 17.2 GB" in text_of(screen, "#hardware")
        assert app.chat.model_label == "no model"


async def press(pilot, screen, selector: str) -> None:
    """Press a button as Enter on it does: a mouse click can land on a passing overlay (a toast) instead."""
    screen.query_one(selector, Button).press()
    await pilot.pause()


async def test_download_cancel_resume_then_chat(smollm2_path: Path, monkeypatch):
    size = smollm2_path.stat().st_size
    write_manifest(manifest([REPO], smollm2_path.name, size))
    engine = ScriptedEngine(Script(THINKING, ANSWER))
    with HubServer() as hub:
        hub.add_file(REPO, smollm2_path.name, smollm2_path)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        session = Session(
            load_settings({"model": "smol-test"}), engine_loader=lambda *_: engine, hardware=HARDWARE
        )
        app = VibelocalApp(session)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
            screen = app.screen
            await wait_for(pilot, lambda: "Recommended" in text_of(screen, "#plan"))
            await wait_for(
                pilot, lambda: "hub answers" in text_of(screen, "#reach")
            )  # checked before Download
            hub.fault("stall", after_bytes=size // 3, stall_s=3.0)  # a window wide enough for the cancel
            await press(pilot, screen, "#download")
            await wait_for(
                pilot,
                lambda: (
                    "MB" in text_of(screen, "#download-status") or "GB" in text_of(screen, "#download-status")
                ),
            )
            await press(pilot, screen, "#cancel")
            await wait_for(pilot, lambda: "cancelled" in text_of(screen, "#download-status"))
            assert str(screen.query_one("#download").label) == "Resume download"
            assert Registry(get_paths()).list() == []
            first_bytes = hub.counters.body_bytes
            assert 0 < first_bytes < size
            await press(pilot, screen, "#download")
            await wait_for(pilot, lambda: app.screen is app.chat)
            await wait_for(pilot, lambda: app.chat.model_label.startswith("smol-test:Q4_1"))
        (installed,) = Registry(get_paths()).list()
        assert installed.verified and installed.size_bytes == size
        assert hub.counters.body_bytes < size + first_bytes  # resumed, not started over


def refused_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_offline_first_run_offers_a_gguf_file_the_user_has(own_gguf: Path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", refused_endpoint())
    engine = ScriptedEngine(Script(THINKING, ANSWER))
    session = Session(load_settings(), engine_loader=lambda *_: engine, hardware=HARDWARE)
    app = VibelocalApp(session)
    async with app.run_test(size=(80, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SetupScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "Cannot download now" in text_of(screen, "#reach"))
        assert screen.query_one("#download").disabled  # never offered while the hub cannot be reached
        reach = screen.query_one("#reach")
        assert "unreachable" in text_of(screen, "#reach") and "--model" not in text_of(screen, "#reach")
        # wrapped, not cut off at the screen edge: the whole message fits in the lines it is given
        assert (
            reach.size.width <= 80 and len(text_of(screen, "#reach")) <= reach.size.width * reach.size.height
        )
        await pilot.click("#use-file")
        assert screen.query_one("#gguf-path").has_focus
        bad = own_gguf.with_name("notes.gguf")
        bad.write_text("not a model")
        await pilot.press(*str(bad), "enter")
        await wait_for(pilot, lambda: "cannot be used" in text_of(screen, "#download-status"))
        assert Registry(get_paths()).list() == []
        screen.query_one("#gguf-path").value = str(own_gguf)
        await pilot.click("#add-file")
        await wait_for(pilot, lambda: app.screen is app.chat)
        await wait_for(pilot, lambda: app.chat.model_label.startswith("my-model.Q4_1"))
    (added,) = Registry(get_paths()).list()
    assert added.path == own_gguf.resolve() and added.sha256 and added.repo is None
    assert load_settings().model == "my-model.Q4_1"  # the next start uses it too


async def test_the_settings_model_picker_offers_a_gguf_file_the_user_added(own_gguf: Path, make_session):
    from vibelocal.models.local import add_local
    from vibelocal.tui.screens.settings import SettingsScreen

    added = add_local(own_gguf, Registry(get_paths()), name="mine")
    app = VibelocalApp(make_session())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        picker = screen.query_one("#model")
        values = [value for _label, value in picker._options]
        assert str(added.path) in values
        picker.value = str(added.path)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await wait_for(pilot, lambda: app.session.model is not None and app.session.model.path == added.path)
        label = app.chat.model_label
    found = app.session.find_installed()
    assert (found.path, found.sha256, found.name) == (added.path, added.sha256, "mine") and label.startswith(
        "mine"
    )


async def test_the_screenshot_command_saves_into_a_folder_that_exists_and_says_where(
    make_session, tmp_path, monkeypatch
):
    from vibelocal.tui.app import screenshot_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    app = VibelocalApp(make_session())
    folder = screenshot_dir(app.session.paths.data_dir)
    assert folder == app.session.paths.data_dir / "screenshots"
    async with app.run_test(size=SIZE) as pilot:
        app.action_screenshot()
        await wait_for(pilot, lambda: folder.is_dir() and any(folder.glob("*.svg")))
        await wait_for(pilot, lambda: any(str(folder) in str(n.message) for n in app._notifications))
    (shot,) = folder.glob("*.svg")
    assert shot.read_text(encoding="utf-8").lstrip().startswith("<svg")
