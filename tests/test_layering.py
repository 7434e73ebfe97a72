"""The one-way layering is checked mechanically: import-linter contracts that cover every core module."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
FRONT_ENDS = {"cli", "tui", "render", "__main__"}


def _contracts() -> list[dict]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["importlinter"]["contracts"]


def test_every_core_module_is_under_the_core_contract():
    core = {p.stem for p in (ROOT / "vibelocal").glob("*.py")} - FRONT_ENDS - {"__init__"}
    covered = {m.removeprefix("vibelocal.") for m in _contracts()[0]["source_modules"]}
    assert core - covered == set(), "add new core modules to the import-linter contracts in pyproject.toml"


def test_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is a test dependency: pip install -e '.[test]'")
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
