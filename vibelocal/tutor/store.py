"""Saved tutor sessions: one JSON file per session under `paths.tutor_dir`, listed newest first, resumable."""

from __future__ import annotations

import os
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from vibelocal.errors import BadInputError
from vibelocal.files import read_capped
from vibelocal.paths import Paths

Outcome = Literal["unsolved", "solved", "revealed"]
KeySource = Literal["front matter", "flag", "model"]
_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_id() -> str:
    """Sortable and unique enough for one person: `20250101-120000-ab12`."""
    return datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class AttemptRecord(BaseModel):
    """One answer the student typed, and the checker's verdict."""

    text: str
    correct: bool
    normalized: str = ""
    error: str | None = None
    at: str = Field(default_factory=now_iso)


class HintRecord(BaseModel):
    """One hint shown; `redacted` counts the spans hidden because they gave the answer away."""

    level: int
    text: str
    redacted: int = 0
    tries: int = 1
    at: str = Field(default_factory=now_iso)


class TutorRecord(BaseModel):
    """Everything about one tutoring session. It holds the hidden solution: it stays on this machine."""

    id: str = Field(default_factory=new_id, pattern=_ID.pattern)
    """`YYYYMMDD-HHMMSS-xxxx`: it names the session's file, so nothing else is accepted."""
    created: str = Field(default_factory=now_iso)
    updated: str = Field(default_factory=now_iso)
    problem: str
    source: str = "-"
    key: str | None = None
    """The reference answer attempts are checked against (None until the model has solved the problem)."""
    key_source: KeySource | None = None
    """Where the key came from: the problem's front matter, `--key`, or the model's own answer (unchecked)."""
    solution: str | None = None
    """The model's worked solution (hidden until revealed)."""
    model: str | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    hints: list[HintRecord] = Field(default_factory=list)
    outcome: Outcome = "unsolved"
    revealed: bool = False

    @property
    def title(self) -> str:
        first = self.problem.strip().splitlines()[0] if self.problem.strip() else ""
        return first[:60] + ("…" if len(first) > 60 else "")


MAX_SESSION_BYTES = 10_000_000
"""A session file is a few kB; a larger one (or a FIFO) is not read but set aside."""


class TutorStore:
    """Reads and writes TutorRecords as `<id>.json` (atomic replace).

    A file that cannot be read (corrupt JSON, a crafted id, not a regular file) is renamed to
    `<name>.corrupt-<time>` and recorded in `set_aside`, so it is kept for inspection but never used.
    """

    def __init__(self, paths: Paths) -> None:
        self.dir = paths.tutor_dir
        self.set_aside: list[tuple[Path, Path]] = []
        """(the unreadable file, where it was moved) for every file set aside by this store."""

    def path_for(self, session_id: str) -> Path:
        if not _ID.match(session_id):  # the id is a file name: never a path
            raise BadInputError(f"not a tutor session id: {session_id!r}", hint="see: vibelocal tutor --list")
        return self.dir / f"{session_id}.json"

    def save(self, record: TutorRecord) -> Path:
        record.updated = now_iso()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path_for(record.id)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(record.model_dump_json(indent=2), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def delete(self, session_id: str) -> None:
        self.path_for(session_id).unlink(missing_ok=True)

    def load(self, session_id: str) -> TutorRecord:
        path = self.path_for(session_id)
        if not (path.exists() or path.is_symlink()):
            raise BadInputError(f"no saved tutor session {session_id}", hint="see: vibelocal tutor --list")
        record, why = self._read(path)
        if record is None:
            raise BadInputError(f"tutor session {session_id} cannot be read: {why}")
        return record

    def _read(self, path: Path) -> tuple[TutorRecord | None, str]:
        """The record in `path`, or None and why (the file is then set aside)."""
        try:
            raw = read_capped(path, "tutor session", MAX_SESSION_BYTES)
            record = TutorRecord.model_validate_json(raw)
        except BadInputError as exc:
            why = exc.message
        except ValidationError as exc:
            first = exc.errors()[0]
            why = f"{'.'.join(str(p) for p in first.get('loc', ())) or 'file'}: {first.get('msg', 'invalid')}"
        else:
            if record.id == path.stem:
                return record, ""
            why = f"its id {record.id!r} does not match its file name"
        return None, f"{why}; {self._set_aside(path)}"

    def _set_aside(self, path: Path) -> str:
        """Move an unreadable file out of the way (kept, never deleted); says what happened."""
        target = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        try:
            os.replace(path, target)
        except OSError as exc:
            return f"it could not be set aside ({exc.strerror or exc})"
        self.set_aside.append((path, target))
        return f"it was set aside as {target.name}"

    def list(self) -> list[TutorRecord]:
        """Every readable session, newest first; unreadable ones are set aside (see `set_aside`)."""
        if not self.dir.is_dir():
            return []
        records = []
        for path in sorted(self.dir.glob("*.json"), reverse=True):
            record, _ = self._read(path)
            if record is not None:
                records.append(record)
        return records

    def latest_unfinished(self) -> TutorRecord | None:
        """The newest unsolved session that can be worked (it has a key); keyless ones need `--resume ID --key`."""
        return next((r for r in self.list() if r.outcome == "unsolved" and r.key is not None), None)

    def remove(self, session_id: str) -> TutorRecord:
        """Delete one saved session (BadInputError, exit 3, for a bad or unknown id); returns what it held."""
        record = self.load(session_id)
        self.delete(session_id)
        return record
