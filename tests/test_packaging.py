"""The wheel as pipx installs it: built from the tree, installed into a clean venv, run from elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from vibelocal import __version__

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0 or env is not None, f"{cmd}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv, wheel): the project wheel installed with --no-deps into a fresh venv whose deps come via a .pth."""
    work = tmp_path_factory.mktemp("pkg")
    dist = work / "dist"
    # An isolated build, as pip/pipx do: hatchling is fetched into a throwaway environment.
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], cwd=work)
    wheel = next(dist.glob("vibelocal-*.whl"))
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    vpy = venv / "bin" / "python"
    run([str(vpy), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=work)
    # Re-resolving dependencies would rebuild llama-cpp-python for minutes and needs the network: borrow this
    # environment's packages instead. Appended, so the wheel's own vibelocal (first on sys.path) wins.
    site = Path(
        run(
            [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_borrowed_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return venv, wheel


def test_wheel_ships_the_manifests(installed):
    _venv, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "vibelocal/_models/vibethinker-3b.toml" in names
    assert "vibelocal/cli/__init__.py" in names
    assert not any(n.startswith("tests/") for n in names)


def test_installed_console_script_runs_from_anywhere(installed, tmp_path):
    venv, _wheel = installed
    env = {**os.environ, "VIBELOCAL_HOME": str(tmp_path / "home"), "PYTHONPATH": ""}
    out = run([str(venv / "bin" / "vibelocal"), "--version"], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"vibelocal {__version__}"


def test_catalog_reads_the_manifests_inside_the_installed_wheel(installed, tmp_path):
    venv, _wheel = installed
    env = {**os.environ, "VIBELOCAL_HOME": str(tmp_path / "home"), "PYTHONPATH": ""}
    probe = (
        "import vibelocal, vibelocal.models.catalog as c; "
        "print(vibelocal.__file__); print(c._builtin_manifest_dir()); print(','.join(c.Catalog().names))"
    )
    out = run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    package_file, manifest_dir, names = out.stdout.strip().splitlines()
    assert Path(package_file).resolve().is_relative_to(venv.resolve())
    assert Path(manifest_dir).resolve() == Path(package_file).resolve().parent / "_models"
    assert "vibethinker-3b" in names.split(",")
    # and through the real command: an unknown model lists the known ones, read from the wheel
    bad = run([str(venv / "bin" / "vibelocal"), "pull", "no-such-model"], cwd=tmp_path, env=env)
    assert bad.returncode == 4
    assert bad.stderr.startswith("error: unknown model 'no-such-model'; known models: vibethinker-3b")
    assert "Traceback" not in bad.stderr
