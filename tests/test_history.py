"""The SQLite conversation store: CRUD, WAL, crash safety, the model's view, reproducibility records, export."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from vibelocal.history import (
    DEFAULT_TITLE,
    History,
    conversation_markdown,
    reproducibility_record,
    title_from,
)
from vibelocal.paths import get_paths
from vibelocal.types import ChatMessage, EngineInfo, GenerationSettings, TurnStats


@pytest.fixture
def db(tmp_path):
    with History(tmp_path / "h.sqlite3") as h:
        yield h


def test_uses_wal_and_the_data_dir_path():
    path = get_paths().history_db
    History(path).close()
    assert path.is_file()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("What is 2+2?", "What is 2+2?"),
        ("\n\n  first line  \nsecond", "first line"),
        ("", DEFAULT_TITLE),
        ("   \n ", DEFAULT_TITLE),
        ("x" * 100, "x" * 47 + "…"),
    ],
)
def test_title_from(text, title):
    assert title_from(text) == title


def test_new_rename_delete_and_order(db):
    a = db.new_conversation()
    b = db.new_conversation("second")
    assert a.title == DEFAULT_TITLE
    db.add_message(a.id, "user", "Prove that sqrt(2) is irrational\nplease")
    listed = db.conversations()
    assert [c.id for c in listed] == [a.id, b.id]  # a was active last
    assert listed[0].title == "Prove that sqrt(2) is irrational"
    assert listed[0].message_count == 1
    db.rename(a.id, "  irrationality  ")
    assert db.conversation(a.id).title == "irrationality"
    db.add_message(a.id, "user", "another question")  # a named chat keeps its name
    assert db.conversation(a.id).title == "irrationality"
    db.delete(a.id)
    assert db.conversation(a.id) is None
    assert db.messages(a.id) == []
    assert [c.id for c in db.conversations()] == [b.id]


def test_reply_keeps_thinking_apart_and_the_model_never_sees_it(db):
    c = db.new_conversation()
    db.add_message(c.id, "user", "1+1?")
    mid = db.start_reply(c.id)
    assert db.message(mid).status == "streaming"
    db.save_reply(mid, thinking="one plus one", content="")
    db.finish_reply(
        mid, thinking="one plus one is two", content="**2**", status="complete", stop_reason="answered"
    )
    db.add_message(c.id, "user", "and 2+2?")
    stopped = db.start_reply(c.id)
    db.finish_reply(stopped, thinking="hmm", content="", status="stopped", stop_reason="cancelled")
    db.add_message(c.id, "user", "3+3?")
    msgs = db.messages(c.id)
    assert [m.role for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[1].thinking == "one plus one is two" and msgs[1].content == "**2**"
    assert msgs[3].status == "stopped"
    assert db.chat_messages(c.id) == [
        ChatMessage("user", "1+1?"),
        ChatMessage("assistant", "**2**"),
        ChatMessage("user", "and 2+2?"),
        ChatMessage("user", "3+3?"),
    ]


def test_reopening_marks_an_unfinished_reply_interrupted(tmp_path):
    path = tmp_path / "h.sqlite3"
    h = History(path)
    c = h.new_conversation()
    h.add_message(c.id, "user", "q")
    mid = h.start_reply(c.id)
    h.save_reply(mid, thinking="partial thought", content="partial")
    h.close()
    with History(path) as again:
        m = again.message(mid)
        assert (m.status, m.thinking, m.content) == ("interrupted", "partial thought", "partial")


def test_a_killed_process_loses_nothing_already_written(tmp_path):
    """SIGKILL right after writes: the user message and the saved part of the reply survive."""
    path = tmp_path / "h.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal
        from vibelocal.history import History
        h = History({str(path)!r})
        c = h.new_conversation()
        h.add_message(c.id, "user", "What is 6*7?")
        done = h.start_reply(c.id)
        h.finish_reply(done, thinking="six sevens", content="42", status="complete")
        h.add_message(c.id, "user", "And 6*8?")
        mid = h.start_reply(c.id)
        h.save_reply(mid, thinking="six eights is", content="")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    with History(path) as h:
        (conv,) = h.conversations()
        msgs = h.messages(conv.id)
        assert [(m.role, m.content, m.thinking, m.status) for m in msgs] == [
            ("user", "What is 6*7?", "", "complete"),
            ("assistant", "42", "six sevens", "complete"),
            ("user", "And 6*8?", "", "complete"),
            ("assistant", "", "six eights is", "interrupted"),
        ]


def test_reproducibility_record_round_trips(db):
    info = EngineInfo(
        model_path="m.gguf", model_name="vibethinker-3b", quant="Q4_K_M", sha256="ab" * 32, device="CPU"
    )
    settings = GenerationSettings(temperature=0.6, top_p=0.95, seed=None, max_thinking_tokens=2048)
    stats = TurnStats(thinking_tokens=100, answer_tokens=20, ttft_s=0.25, decode_tok_s=31.5, seed=1234)
    rec = reproducibility_record(info, settings, stats, budget_label="low", stop_reason="answered")
    c = db.new_conversation()
    mid = db.start_reply(c.id)
    db.finish_reply(mid, thinking="t", content="a", status="complete", record=rec)
    stored = db.message(mid).record
    assert stored["model_file"] == "m.gguf" and stored["sha256"] == "ab" * 32
    assert stored["quant"] == "Q4_K_M" and stored["device"] == "CPU"
    assert stored["seed"] == 1234  # the seed actually used, not the unset setting
    assert stored["sampler"] == {
        "temperature": 0.6,
        "top_p": 0.95,
        "top_k": 0,
        "min_p": 0.0,
        "repeat_penalty": 1.0,
    }
    assert stored["budget"]["label"] == "low" and stored["budget"]["thinking_tokens"] == 2048
    assert (stored["tok_s"], stored["ttft_s"]) == (31.5, 0.25)


def test_export_puts_thinking_in_details(db):
    c = db.new_conversation("Sums")
    db.add_message(c.id, "user", "1+1?")
    mid = db.start_reply(c.id)
    rec = {"model_name": "vibethinker-3b", "quant": "Q8_0", "thinking_tokens": 3, "seed": 7, "tok_s": 12.0}
    db.finish_reply(mid, thinking="add </details> one", content="$2$", status="complete", record=rec)
    mid2 = db.start_reply(c.id)
    db.finish_reply(mid2, thinking="", content="par", status="stopped")
    md = conversation_markdown(db.conversation(c.id), db.messages(c.id))
    assert md.startswith("# Sums\n")
    assert "## You\n\n1+1?" in md
    assert (
        "<details>\n<summary>Thinking (3 tokens)</summary>\n\nadd &lt;/details&gt; one\n\n</details>\n\n$2$"
        in md
    )
    assert "vibethinker-3b · Q8_0 · seed 7 · 12.0 tok/s" in md
    assert md.count("<details>") == 1  # no empty thinking block for the second reply
    assert "par\n\n*(stopped by the user)*" in md


def test_open_history_sets_a_corrupt_file_aside(tmp_path):
    from vibelocal.history import open_history

    db = tmp_path / "history.sqlite3"
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)  # the right magic, a broken header
    history, aside = open_history(db)
    try:
        assert aside is not None and aside.read_bytes().startswith(b"SQLite format 3\x00")
        assert history.conversations() == []
    finally:
        history.close()


def test_open_history_leaves_a_good_file_alone(tmp_path):
    from vibelocal.history import open_history

    db = tmp_path / "history.sqlite3"
    with History(db) as first:
        first.new_conversation("kept")
    history, aside = open_history(db)
    try:
        assert aside is None and [c.title for c in history.conversations()] == ["kept"]
    finally:
        history.close()


def test_redo_turn_replaces_the_last_reply_and_can_edit_the_message(db):
    c = db.new_conversation()
    first = db.add_message(c.id, "user", "What is 6*7?")
    old = db.start_reply(c.id)
    db.finish_reply(old, thinking="six sevens", content="41", status="complete")
    new = db.redo_turn(c.id, first.id)
    assert [(m.role, m.content, m.status) for m in db.messages(c.id)] == [
        ("user", "What is 6*7?", "complete"),
        ("assistant", "", "streaming"),
    ]
    db.finish_reply(new, thinking="again", content="42", status="complete")
    edited = db.redo_turn(c.id, first.id, text="What is 6*8?")
    assert [(m.role, m.content, m.status) for m in db.messages(c.id)] == [
        ("user", "What is 6*8?", "complete"),
        ("assistant", "", "streaming"),
    ]
    assert db.messages(c.id)[1].id == edited
    assert db.conversation(c.id).title == "What is 6*8?"  # named after the first message, so renamed with it


def test_redo_turn_refuses_anything_but_the_last_user_message_and_changes_nothing(db):
    c = db.new_conversation()
    first = db.add_message(c.id, "user", "one")
    db.finish_reply(db.start_reply(c.id), thinking="", content="1", status="complete")
    db.add_message(c.id, "user", "two")
    db.finish_reply(db.start_reply(c.id), thinking="", content="2", status="complete")
    db.rename(c.id, "Numbers")
    before = db.messages(c.id)
    with pytest.raises(ValueError, match="not the last user message"):
        db.redo_turn(c.id, first.id, text="uno")
    other = db.new_conversation()
    with pytest.raises(ValueError):
        db.redo_turn(other.id, before[2].id)
    assert db.messages(c.id) == before and db.messages(other.id) == []
    last = db.redo_turn(c.id, before[2].id, text="dos")
    assert [m.content for m in db.messages(c.id)] == ["one", "1", "dos", ""]
    assert db.conversation(c.id).title == "Numbers" and db.messages(c.id)[-1].id == last


def test_a_process_killed_after_a_redo_keeps_the_new_turn(tmp_path):
    path = tmp_path / "h.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal
        from vibelocal.history import History
        h = History({str(path)!r})
        c = h.new_conversation()
        q = h.add_message(c.id, "user", "What is 6*7?")
        h.finish_reply(h.start_reply(c.id), thinking="six sevens", content="41", status="complete")
        mid = h.redo_turn(c.id, q.id, text="What is 7*6?")
        h.save_reply(mid, thinking="seven sixes", content="")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with History(path) as h:
        (conv,) = h.conversations()
        assert [(m.role, m.content, m.thinking, m.status) for m in h.messages(conv.id)] == [
            ("user", "What is 7*6?", "", "complete"),
            ("assistant", "", "seven sixes", "interrupted"),
        ]
