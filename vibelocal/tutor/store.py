"""Saved tutor sessions: one JSON file per session under `paths.tutor_dir`, listed newest first, resumable."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from vibelocal.errors import BadInputError
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

    id: str = Field(default_factory=new_id)
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


class TutorStore:
    """Reads and writes TutorRecords as `<id>.json` (atomic replace)."""

    def __init__(self, paths: Paths) -> None:
        self.dir = paths.tutor_dir

    def path_for(self, session_id: str) -> Path:
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
        if not _ID.match(session_id):
            raise BadInputError(f"not a tutor session id: {session_id!r}", hint="see: vibelocal tutor --list")
        path = self.path_for(session_id)
        if not path.is_file():
            raise BadInputError(f"no saved tutor session {session_id}", hint="see: vibelocal tutor --list")
        try:
            return TutorRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError) as exc:
            raise BadInputError(f"tutor session {session_id} cannot be read: {type(exc).__name__}") from None

    def list(self) -> list[TutorRecord]:
        """Every readable session, newest first (unreadable files are skipped)."""
        if not self.dir.is_dir():
            return []
        records = []
        for path in sorted(self.dir.glob("*.json"), reverse=True):
            try:
                records.append(TutorRecord.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValidationError, ValueError):
                continue
        return records

    def latest_unfinished(self) -> TutorRecord | None:
        """The newest unsolved session that can be worked (it has a key); keyless ones need `--resume ID --key`."""
        return next((r for r in self.list() if r.outcome == "unsolved" and r.key is not None), None)

    def remove(self, session_id: str) -> TutorRecord:
        """Delete one saved session (BadInputError, exit 3, for a bad or unknown id); returns what it held."""
        record = self.load(session_id)
        self.delete(session_id)
        return record
