"""Where vibelocal keeps config, data and caches (platformdirs, or everything under $VIBELOCAL_HOME)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "vibelocal"
HOME_ENV = "VIBELOCAL_HOME"


@dataclass(frozen=True)
class Paths:
    """The three roots vibelocal writes to."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def registry_file(self) -> Path:
        """Installed, verified models (written by the downloader)."""
        return self.data_dir / "models.json"

    @property
    def history_db(self) -> Path:
        """Chat conversations (SQLite)."""
        return self.data_dir / "history.sqlite3"

    @property
    def log_dir(self) -> Path:
        """Crash logs: the traceback of an unexpected error, named in its one-line message."""
        return self.data_dir / "logs"

    @property
    def tutor_dir(self) -> Path:
        """Saved tutor sessions."""
        return self.data_dir / "tutor"


def get_paths(environ: dict[str, str] | None = None) -> Paths:
    """Resolve the roots; $VIBELOCAL_HOME moves all three (tests and portable installs use it)."""
    env = os.environ if environ is None else environ
    home = env.get(HOME_ENV)
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache")
    import platformdirs

    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
    )
