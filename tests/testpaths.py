"""Where the repository and the shared test fixtures are, for test modules at any depth of tests/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def make_odd_path(path: Path, kind: str) -> None:
    """Put something at `path` that is no model file: a symlink `loop`, a `dangling` symlink, or a `fifo`."""
    import os

    if kind == "loop":
        path.symlink_to(path.name)
    elif kind == "dangling":
        path.symlink_to("gone.gguf")
    else:
        os.mkfifo(path)
