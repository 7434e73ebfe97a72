"""Saved tutor sessions: ids are file names and nothing else; unreadable files are set aside, kept and reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from vibelocal.errors import BadInputError
from vibelocal.paths import get_paths
from vibelocal.tutor.store import TutorRecord, TutorStore

GOOD_ID = "20250101-120000-ab12"


def _write(store: TutorStore, name: str, content: str) -> None:
    store.dir.mkdir(parents=True, exist_ok=True)
    (store.dir / name).write_text(content, encoding="utf-8")


def test_a_record_round_trips():
    store = TutorStore(get_paths())
    record = TutorRecord(problem="What is 2+2?")
    store.save(record)
    assert store.load(record.id).problem == "What is 2+2?"
    assert [r.id for r in store.list()] == [record.id]


@pytest.mark.parametrize("bad", ["../../escape", "/etc/x", "20250101-120000-ab12/../../x", ""])
def test_a_crafted_id_is_not_a_record(bad):
    with pytest.raises(ValidationError):
        TutorRecord(id=bad, problem="x")


def test_a_crafted_id_in_a_file_never_writes_outside_the_folder(tmp_path):
    store = TutorStore(get_paths())
    crafted = TutorRecord(id=GOOD_ID, problem="x").model_dump()
    crafted["id"] = "../../escaped"
    _write(store, f"{GOOD_ID}.json", json.dumps(crafted))
    with pytest.raises(
        BadInputError, match=f"tutor session {GOOD_ID} cannot be read: id: String should match"
    ):
        store.load(GOOD_ID)
    assert not (store.dir.parent.parent / "escaped.json").exists()
    assert not (store.dir / f"{GOOD_ID}.json").exists()  # set aside, not left to be tried again
    (aside,) = store.dir.glob(f"{GOOD_ID}.json.corrupt-*")
    assert json.loads(aside.read_text(encoding="utf-8"))["id"] == "../../escaped"  # kept as it was


def test_an_id_that_differs_from_the_file_name_is_set_aside():
    store = TutorStore(get_paths())
    other = TutorRecord(id="20250101-120000-cd34", problem="x")
    _write(store, f"{GOOD_ID}.json", other.model_dump_json())
    assert store.list() == []
    assert [p.name for p, _ in store.set_aside] == [f"{GOOD_ID}.json"]


def test_path_for_refuses_anything_but_an_id():
    with pytest.raises(BadInputError, match="not a tutor session id"):
        TutorStore(get_paths()).path_for("../x")


def test_list_sets_corrupt_sessions_aside_and_keeps_the_good_ones():
    store = TutorStore(get_paths())
    good = TutorRecord(problem="good one")
    store.save(good)
    _write(store, "20240101-000000-0000.json", "{not json")
    os.mkfifo(store.dir / "20240101-000000-0001.json")  # a FIFO: must not block the listing
    assert [r.id for r in store.list()] == [good.id]
    assert sorted(p.name for p, _ in store.set_aside) == [
        "20240101-000000-0000.json",
        "20240101-000000-0001.json",
    ]
    assert all(a.exists() and a.name.startswith(p.name + ".corrupt-") for p, a in store.set_aside)


def test_tutor_list_says_what_was_set_aside():
    store = TutorStore(get_paths())
    _write(store, "20240101-000000-0000.json", "{not json")
    out = subprocess.run(
        [sys.executable, "-m", "vibelocal", "tutor", "--list"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0
    (note, empty) = out.stderr.splitlines()
    assert note.startswith(
        "note: tutor session file 20240101-000000-0000.json was unreadable and was set aside as "
        "20240101-000000-0000.json.corrupt-"
    )
    assert empty == "no saved tutor sessions"
