"""The architecture is checked mechanically: import-linter's layers and library contracts hold, they catch a
violation in a module nobody listed, and the folder stays grouped by concern."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testpaths import ROOT

PACKAGE = ROOT / "vibelocal"
MAX_TOP_LEVEL_MODULES = 12
MAX_FUNCTION_LINES = 80


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is a test dependency: pip install -e '.[test]'")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_contracts_hold():
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_contracts_catch_violations_in_new_modules(tmp_path):
    """New modules are covered without a contract edit: each of these breaks exactly the contract meant for it."""
    shutil.copytree(PACKAGE, tmp_path / "vibelocal", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "vibelocal" / "engine" / "upward.py").write_text("import vibelocal.cli.render\n")
    (tmp_path / "vibelocal" / "answers" / "direct.py").write_text("import llama_cpp\n")
    (tmp_path / "vibelocal" / "models" / "ui.py").write_text("import rich\n")
    (tmp_path / "vibelocal" / "tutor" / "sneaky.py").write_text("import vibelocal.session\n")
    (tmp_path / "vibelocal" / "stray.py").write_text('"""A top-level module no layer names."""\n')
    out = _lint_imports(tmp_path)
    report = out.stdout
    assert out.returncode != 0
    assert "vibelocal.engine.upward -> vibelocal.cli.render" in report
    assert "vibelocal.answers.direct -> llama_cpp" in report
    assert "vibelocal.models.ui -> rich" in report
    assert "vibelocal.tutor.sneaky -> vibelocal.session" in report
    assert "vibelocal.stray" in report  # the exhaustive layers contract names the unplaced module


def test_vibelocal_is_grouped_by_concern():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top
    for wing in ("cli", "tui", "models", "placement", "engine", "engine/llama", "answers", "tutor"):
        assert (PACKAGE / wing / "__init__.py").is_file(), wing


def _long_functions() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_the_limit():
    assert _long_functions() == []
