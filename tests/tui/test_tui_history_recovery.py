"""The chat app starts on a corrupt history.sqlite3: the file is set aside (kept), a fresh one is used, the user is told."""

from __future__ import annotations

import pytest

from vibelocal.tui.app import VibelocalApp

pytestmark = pytest.mark.anyio


async def test_a_corrupt_history_is_set_aside_and_the_app_starts(make_session):
    session = make_session()
    db = session.paths.history_db
    db.parent.mkdir(parents=True, exist_ok=True)
    garbage = b"this is not a database\x00" * 500
    db.write_bytes(garbage)
    app = VibelocalApp(session)
    async with app.run_test() as pilot:
        await pilot.pause()
        aside = app.history_set_aside
        assert aside is not None and aside.read_bytes() == garbage  # the copy is kept byte for byte
        assert aside.parent == db.parent and aside.name.startswith("history.sqlite3.corrupt-")
        notes = [n.message for n in app._notifications]
        assert any("could not be read; it was set aside as" in m and str(aside) in m for m in notes)
        conv = app.history.new_conversation("after recovery")  # the fresh store works
        assert app.history.conversation(conv.id).title == "after recovery"
