"""Chat conversations in SQLite (WAL): conversations, messages with separate thinking, reproducibility records."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vibelocal import __version__
from vibelocal.types import ChatMessage, EngineInfo, GenerationSettings, StopReason, TurnStats

DEFAULT_TITLE = "New chat"
TITLE_CHARS = 48

MessageStatus = Literal["streaming", "complete", "stopped", "interrupted", "error"]
"""streaming: being written; stopped: the user pressed Esc; interrupted: the app died mid-reply."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL DEFAULT '',
    thinking TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'complete',
    stop_reason TEXT,
    record TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
"""
_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Conversation:
    """One stored conversation (newest activity first in listings)."""

    id: int
    title: str
    created_at: float
    updated_at: float
    message_count: int = 0


@dataclass(frozen=True)
class StoredMessage:
    """One stored message. Assistant messages keep their thinking apart from the answer in `content`."""

    id: int
    conversation_id: int
    role: Literal["system", "user", "assistant"]
    content: str
    thinking: str = ""
    status: MessageStatus = "complete"
    stop_reason: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


def reproducibility_record(
    info: EngineInfo,
    settings: GenerationSettings,
    stats: TurnStats | None,
    *,
    budget_label: str | None = None,
    sha256: str | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """Everything needed to re-run a turn: model file and hash, quant, sampler, seed, budget, device, speed."""
    stats = stats or TurnStats()
    return {
        "model_file": info.model_path,
        "model_name": info.model_name,
        "sha256": info.sha256 or sha256,
        "quant": info.quant,
        "sampler": {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "top_k": settings.top_k,
            "min_p": settings.min_p,
            "repeat_penalty": settings.repeat_penalty,
        },
        "seed": stats.seed if stats.seed is not None else settings.seed,
        "budget": {
            "label": budget_label,
            "thinking_tokens": stats.budget_tokens
            if stats.budget_tokens is not None
            else settings.max_thinking_tokens,
            "thinking_time_s": settings.thinking_time_s,
            "answer_tokens": settings.max_answer_tokens,
            "prefill_think": settings.prefill_think,
        },
        "device": info.device,
        "backend": info.backend,
        "n_ctx": info.n_ctx,
        "n_gpu_layers": info.n_gpu_layers,
        "n_threads": info.n_threads,
        "tok_s": stats.decode_tok_s,
        "ttft_s": stats.ttft_s,
        "prompt_tokens": stats.prompt_tokens,
        "thinking_tokens": stats.thinking_tokens,
        "answer_tokens": stats.answer_tokens,
        "budget_hit": stats.budget_hit,
        "stop_reason": stop_reason,
        "vibelocal": __version__,
    }


def title_from(text: str) -> str:
    """A conversation title from its first user message: the first line, shortened."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not line:
        return DEFAULT_TITLE
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def open_history(path: Path) -> tuple[History, Path | None]:
    """The history at `path`, and None; or, when SQLite cannot use the file, a fresh history and where the
    unreadable file was moved (it is kept, with its -wal/-shm files, as `<name>.corrupt-<time>`)."""
    path = Path(path)
    try:
        return History(path), None
    except sqlite3.DatabaseError:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return History(path), aside


class History:
    """The conversation store. Every write commits at once, so a crash loses nothing already written.

    Opening marks replies left `streaming` by a crashed or killed app as `interrupted` (their text is kept).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
        try:
            self._open()
        except sqlite3.DatabaseError:
            self._db.close()
            raise

    def _open(self) -> None:
        """Settings, schema and crash recovery; sqlite3.DatabaseError when the file is not a sound database."""
        self._db.row_factory = sqlite3.Row
        check = self._db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check[0] if check else 'no answer'}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            self._db.execute(
                "UPDATE messages SET status='interrupted' WHERE status='streaming' AND role='assistant'"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    # ------------------------------------------------------------------ conversations

    def new_conversation(self, title: str = DEFAULT_TITLE) -> Conversation:
        now = time.time()
        cur = self._run(
            "INSERT INTO conversations (title, created_at, updated_at) VALUES (?, ?, ?)",
            (title.strip() or DEFAULT_TITLE, now, now),
        )
        return self.conversation(int(cur.lastrowid or 0))  # type: ignore[return-value]

    def conversation(self, conversation_id: int) -> Conversation | None:
        row = self._run(
            "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        return _conversation(row) if row else None

    def conversations(self) -> list[Conversation]:
        """All conversations, most recently active first."""
        rows = self._run(
            "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c ORDER BY c.updated_at DESC, c.id DESC"
        ).fetchall()
        return [_conversation(r) for r in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        self._run(
            "UPDATE conversations SET title = ? WHERE id = ?",
            (title.strip() or DEFAULT_TITLE, conversation_id),
        )

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and its messages."""
        self._run("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def _touch(self, conversation_id: int, now: float) -> None:
        self._run("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))

    # ------------------------------------------------------------------ messages

    def add_message(
        self, conversation_id: int, role: Literal["system", "user", "assistant"], content: str
    ) -> StoredMessage:
        """Store a finished message (a user's is stored the moment it is sent); the first one names the chat."""
        now = time.time()
        cur = self._run(
            "INSERT INTO messages (conversation_id, role, content, status, created_at, updated_at) "
            "VALUES (?, ?, ?, 'complete', ?, ?)",
            (conversation_id, role, content, now, now),
        )
        if role == "user":
            self._run(
                "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                (title_from(content), conversation_id, DEFAULT_TITLE),
            )
        self._touch(conversation_id, now)
        return self.message(int(cur.lastrowid or 0))  # type: ignore[return-value]

    def start_reply(self, conversation_id: int) -> int:
        """Create an empty assistant message in `streaming` state; returns its id."""
        now = time.time()
        cur = self._run(
            "INSERT INTO messages (conversation_id, role, status, created_at, updated_at) "
            "VALUES (?, 'assistant', 'streaming', ?, ?)",
            (conversation_id, now, now),
        )
        self._touch(conversation_id, now)
        return int(cur.lastrowid or 0)

    def redo_turn(self, conversation_id: int, user_message_id: int, *, text: str | None = None) -> int:
        """Replace the reply to the conversation's last user message with a new empty `streaming` one; with
        `text`, the message itself is edited first. Returns the new reply's id.

        Everything after the message (the old reply) is deleted in the same transaction that edits the message
        and starts the new reply, so a crash leaves either the old turn or the new one, never half of each.
        ValueError when `user_message_id` is not the last user message of that conversation (nothing changes).
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                reply_id = self._redo(conversation_id, user_message_id, text, now)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return reply_id

    def _redo(self, conversation_id: int, user_message_id: int, text: str | None, now: float) -> int:
        """The body of `redo_turn`, inside its transaction (the lock held)."""
        db = self._db
        users = db.execute(
            "SELECT id, content FROM messages WHERE conversation_id = ? AND role = 'user' ORDER BY id",
            (conversation_id,),
        ).fetchall()
        if not users or int(users[-1]["id"]) != user_message_id:
            raise ValueError(f"message {user_message_id} is not the last user message of this conversation")
        db.execute(
            "DELETE FROM messages WHERE conversation_id = ? AND id > ?", (conversation_id, user_message_id)
        )
        if text is not None:
            db.execute(
                "UPDATE messages SET content = ?, updated_at = ? WHERE id = ?", (text, now, user_message_id)
            )
            if len(users) == 1:  # the chat was named after this message: name it after the edited text
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                    (title_from(text), conversation_id, title_from(users[0]["content"])),
                )
        cur = db.execute(
            "INSERT INTO messages (conversation_id, role, status, created_at, updated_at) "
            "VALUES (?, 'assistant', 'streaming', ?, ?)",
            (conversation_id, now, now),
        )
        db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        return int(cur.lastrowid or 0)

    def save_reply(self, message_id: int, *, thinking: str, content: str) -> None:
        """Progress of a reply still streaming (called every second or so)."""
        self._run(
            "UPDATE messages SET thinking = ?, content = ?, updated_at = ? WHERE id = ?",
            (thinking, content, time.time(), message_id),
        )

    def finish_reply(
        self,
        message_id: int,
        *,
        thinking: str,
        content: str,
        status: MessageStatus,
        stop_reason: StopReason | str | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        self._run(
            "UPDATE messages SET thinking = ?, content = ?, status = ?, stop_reason = ?, record = ?, "
            "updated_at = ? WHERE id = ?",
            (thinking, content, status, stop_reason, json.dumps(record or {}), now, message_id),
        )
        row = self._run("SELECT conversation_id FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row:
            self._touch(int(row["conversation_id"]), now)

    def message(self, message_id: int) -> StoredMessage | None:
        row = self._run("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        return _message(row) if row else None

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._run(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        ).fetchall()
        return [_message(r) for r in rows]

    def chat_messages(self, conversation_id: int) -> list[ChatMessage]:
        """The conversation as the model sees it: user messages and assistant answers, never old thinking.

        Assistant messages with no answer (stopped while thinking, failed) are left out.
        """
        out: list[ChatMessage] = []
        for m in self.messages(conversation_id):
            if m.role == "assistant" and not m.content.strip():
                continue
            out.append(ChatMessage(m.role, m.content))
        return out


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=int(row["id"]),
        title=row["title"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        message_count=int(row["n"]),
    )


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=int(row["id"]),
        conversation_id=int(row["conversation_id"]),
        role=row["role"],
        content=row["content"],
        thinking=row["thinking"],
        status=row["status"],
        stop_reason=row["stop_reason"],
        record=json.loads(row["record"]) if row["record"] else {},
        created_at=float(row["created_at"]),
    )


# --------------------------------------------------------------------------- export

_STATUS_NOTES = {
    "stopped": "stopped by the user",
    "interrupted": "interrupted: the app closed mid-reply",
    "error": "failed",
}


def conversation_markdown(conversation: Conversation, messages: Sequence[StoredMessage]) -> str:
    """A conversation as Markdown; each reply's thinking sits in a collapsed `<details>` block above it."""
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created_at))
    lines = [f"# {conversation.title}", "", f"*vibelocal conversation, started {stamp}*", ""]
    for m in messages:
        if m.role == "user":
            lines += ["## You", "", m.content.rstrip(), ""]
            continue
        if m.role == "system":
            lines += ["## System", "", m.content.rstrip(), ""]
            continue
        lines += ["## Assistant", ""]
        if m.thinking.strip():
            thinking = m.thinking.strip().replace("</details>", "&lt;/details&gt;")
            count = m.record.get("thinking_tokens")
            summary = f"Thinking ({count:,} tokens)" if isinstance(count, int) and count else "Thinking"
            lines += ["<details>", f"<summary>{summary}</summary>", "", thinking, "", "</details>", ""]
        lines += [m.content.rstrip() or "*(no answer)*", ""]
        if note := _STATUS_NOTES.get(m.status):
            lines += [f"*({note})*", ""]
        if meta := _record_line(m.record):
            lines += [f"<sub>{meta}</sub>", ""]
    return "\n".join(lines).rstrip() + "\n"


def _record_line(record: dict[str, Any]) -> str:
    parts: list[str] = []
    if record.get("model_name") or record.get("model_file"):
        parts.append(str(record.get("model_name") or Path(str(record["model_file"])).name))
    if record.get("quant"):
        parts.append(str(record["quant"]))
    if record.get("device"):
        parts.append(str(record["device"]))
    if record.get("seed") is not None:
        parts.append(f"seed {record['seed']}")
    sampler = record.get("sampler") or {}
    if sampler.get("temperature") is not None:
        parts.append(f"temperature {sampler['temperature']}")
    if isinstance(record.get("tok_s"), (int, float)):
        parts.append(f"{record['tok_s']:.1f} tok/s")
    if isinstance(record.get("ttft_s"), (int, float)):
        parts.append(f"TTFT {record['ttft_s']:.2f}s")
    return " · ".join(parts)
