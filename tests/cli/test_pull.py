"""`vibelocal pull` / `models` / `models rm` as a user runs them: real subprocesses against the test hub server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubserver import REPO, HubServer, manifest, write_manifest
from typer.testing import CliRunner

from vibelocal.config import Settings
from vibelocal.errors import ExitCode, ModelUnavailableError
from vibelocal.models.store import Registry, hf_cache_dir
from vibelocal.paths import get_paths
from vibelocal.session import Session

MODEL_KEYS = {
    "name",
    "quant",
    "size_bytes",
    "path",
    "sha256",
    "repo",
    "file",
    "revision",
    "verified",
    "verified_at",
    "local",
}


@pytest.fixture(scope="module")
def hub_module(smollm2_path: Path):
    with HubServer() as hub:
        hub.add_file(REPO, smollm2_path.name, smollm2_path)
        yield hub


@pytest.fixture
def hub(hub_module: HubServer, smollm2_path: Path, monkeypatch) -> HubServer:
    hub_module.reset_counters()
    hub_module._faults.clear()
    monkeypatch.setenv("HF_ENDPOINT", hub_module.endpoint)
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")  # the stall timeout, read by download.py at pull time
    write_manifest(manifest([REPO], smollm2_path.name, smollm2_path.stat().st_size))
    return hub_module


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vibelocal", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The error is one line, the last on stderr (status lines such as the planner's choice may precede it)."""
    lines = out.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], out.stderr
    assert "Traceback" not in out.stderr
    return errors[0]


def wait_for_partial(size: int, proc: subprocess.Popen[str]) -> Path:
    blobs = hf_cache_dir() / "models--test-org--smol-GGUF" / "blobs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for p in blobs.glob("*.incomplete") if blobs.exists() else []:
            if p.stat().st_size >= size:
                return p
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the download never reached the stall point")


# --------------------------------------------------------------------------- pull


def test_pull_without_tty_proceeds_shows_plain_progress_and_prints_the_result(hub, smollm2_path):
    out = cli("pull", "smol-test")
    assert out.returncode == 0, out.stderr
    fields = out.stdout.strip().split("\t")
    assert fields[0] == "smol-test:Q4_1" and fields[2] == "verified" and Path(fields[3]).is_file()
    assert "(100%" in out.stderr and "verifying checksum" in out.stderr
    assert "Traceback" not in out.stderr
    again = cli("pull", "smol-test", "--quiet")
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout == out.stdout


def test_pull_survives_a_drop_and_a_500(hub, smollm2_path):
    hub.fault("500", method="GET")
    hub.fault("drop", after_bytes=40_000_000)
    out = cli("pull", "smol-test:Q4_1", "--yes")
    assert out.returncode == 0, out.stderr
    assert "HTTP 500; retrying" in out.stderr and "connection dropped at 40.00 MB" in out.stderr
    assert hub.counters.body_bytes <= smollm2_path.stat().st_size + 512 * 1024


def test_pull_of_a_corrupt_file_fails_and_lists_nothing(hub):
    hub.fault("corrupt")
    out = cli("pull", "smol-test", "--yes", "--quiet")
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE
    assert "failed its sha256 check and was removed" in one_error_line(out)
    assert out.stdout == ""
    listed = cli("models", "--json")
    assert json.loads(listed.stdout) == {"models": []}


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["pull", "no-such-model"], {}, "known models: smol-test, vibethinker-3b"),
        (["pull", f"{REPO}/missing.Q4_1.gguf"], {}, f"missing.Q4_1.gguf not found in {REPO} (HTTP 404)"),
        (["pull", "smol-test"], {"VIBELOCAL_OFFLINE": "1"}, "offline, and SmolLM2-135M-Instruct"),
        (["pull", "smol-test"], {"HF_HUB_OFFLINE": "1"}, "offline, and SmolLM2-135M-Instruct"),
    ],
)
def test_pull_errors_are_one_line_with_exit_4(hub, args, env, fragment):
    out = cli(*args, env=env)
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE
    assert fragment in one_error_line(out)
    assert out.stdout == ""


def test_pull_of_a_gated_file_explains_hf_token(hub):
    hub.fault("401", method="HEAD")
    out = cli("pull", "smol-test")
    assert "HF_TOKEN" in one_error_line(out) and out.returncode == ExitCode.MODEL_UNAVAILABLE


def test_pull_of_a_path_checks_the_gguf(hub, smollm2_path, tmp_path):
    out = cli("pull", str(smollm2_path))
    assert out.returncode == 0, out.stderr
    assert "local file, sha256 " in out.stdout
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all, just text" * 10)
    out = cli("pull", str(bad))
    assert out.returncode == ExitCode.MODEL_LOAD and "not a GGUF model file" in one_error_line(out)


def test_ctrl_c_exits_130_keeps_the_partial_and_the_next_pull_resumes(hub, smollm2_path):
    hub.fault("stall", after_bytes=30_000_000, stall_s=60)
    proc = popen("pull", "smol-test", "--yes")
    wait_for_partial(30_000_000, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: download of SmolLM2 test Q4_1 interrupted") and "resumes it" in last
    assert stdout == "" and "Traceback" not in stderr
    hub.reset_counters()
    out = cli("pull", "smol-test", "--yes")
    assert out.returncode == 0, out.stderr
    assert "resuming at 30.00 MB" in out.stderr
    assert hub.counters.body_bytes == smollm2_path.stat().st_size - 30_000_000


def test_a_killed_process_leaves_a_partial_that_the_next_pull_resumes(hub, smollm2_path):
    hub.fault("stall", after_bytes=45_000_000, stall_s=60)
    proc = popen("pull", "smol-test", "--yes", "--quiet")
    wait_for_partial(45_000_000, proc)
    proc.kill()  # SIGKILL: no cleanup of any kind runs
    proc.communicate(timeout=30)
    hub.reset_counters()
    out = cli("pull", "smol-test", "--yes", "--quiet")
    assert out.returncode == 0, out.stderr
    assert hub.counters.body_bytes == smollm2_path.stat().st_size - 45_000_000


# --------------------------------------------------------------------------- models


def test_models_lists_json_and_removes(hub, smollm2_path):
    assert cli("pull", "smol-test", "-q").returncode == 0
    table = cli("models")
    assert table.returncode == 0
    header, row = table.stdout.strip().splitlines()
    assert header.split() == ["NAME", "QUANT", "SIZE", "PATH"]
    assert row.split()[:4] == ["smol-test", "Q4_1", "98.36", "MB"]
    data = json.loads(cli("models", "--json").stdout)
    assert list(data) == ["models"] and len(data["models"]) == 1
    entry = data["models"][0]
    assert set(entry) == MODEL_KEYS
    assert entry["size_bytes"] == smollm2_path.stat().st_size and entry["verified"] is True
    assert len(entry["sha256"]) == 64 and entry["verified_at"].endswith("Z")
    blob = Path(entry["path"]).resolve()
    removed = cli("models", "rm", "smol-test")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("removed smol-test:Q4_1")
    assert not Path(entry["path"]).exists() and not blob.exists()
    assert json.loads(cli("models", "--json").stdout) == {"models": []}
    empty = cli("models")
    assert empty.stdout == "" and "no models installed" in empty.stderr
    again = cli("models", "rm", "smol-test")
    assert again.returncode == ExitCode.MODEL_UNAVAILABLE and "no installed model matches" in one_error_line(
        again
    )


def test_models_rm_keep_file_only_forgets(hub):
    assert cli("pull", "smol-test", "-q").returncode == 0
    path = Path(json.loads(cli("models", "--json").stdout)["models"][0]["path"])
    out = cli("models", "rm", "smol-test:Q4_1", "--keep-file")
    assert out.returncode == 0 and "kept" in out.stdout
    assert path.is_file() and Registry(get_paths()).list() == []


def test_models_survives_a_corrupt_registry(hub):
    get_paths().registry_file.parent.mkdir(parents=True, exist_ok=True)
    get_paths().registry_file.write_text("{not json")
    out = cli("models", "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == {"models": []}
    assert "set aside" in out.stderr


# --------------------------------------------------------------------------- the first-run helper and the prompt


def test_pull_with_progress_refuses_without_tty_or_yes(hub):
    from vibelocal.cli.pull import pull_with_progress

    with pytest.raises(ModelUnavailableError) as err:
        pull_with_progress(Session(Settings()), "smol-test", yes=False, quiet=True)
    assert "vibelocal pull smol-test" in (err.value.hint or "") and "--yes" in (err.value.hint or "")
    assert hub.counters.requests == []


@pytest.mark.parametrize(("answer", "code"), [("n\n", ExitCode.MODEL_UNAVAILABLE), ("y\n", 0)])
def test_pull_asks_on_a_tty(hub, monkeypatch, answer, code):
    import vibelocal.cli.pull as pull_cli
    from vibelocal.cli import app

    monkeypatch.setattr(pull_cli, "_is_tty", lambda: True)
    result = CliRunner().invoke(app, ["pull", "smol-test", "--quiet"], input=answer)
    assert result.exit_code == code, result.output
    assert "Download SmolLM2 test Q4_1 (98.36 MB)?" in result.stderr
    assert ("smol-test:Q4_1" in result.stdout) == (code == 0)
    assert (hub.counters.body_bytes > 0) == (code == 0)


def test_plain_and_rich_progress_render_every_phase(capsys):
    from vibelocal.cli.pull import _PlainProgress, _RichProgress
    from vibelocal.models.download import DownloadProgress

    total = 1_000_000
    events = [
        DownloadProgress("m.gguf", n, total, speed_bps=1e6, eta_s=(total - n) / 1e6)
        for n in range(0, total + 1, 50_000)
    ]
    events += [
        DownloadProgress("m.gguf", 0, None, note="connection dropped at 1 MB; retrying in 1s (1/5)"),
        DownloadProgress("m.gguf", total, total, phase="verify"),
        DownloadProgress("m.gguf", total, total, phase="cached"),
    ]
    plain = _PlainProgress()
    for e in events:
        plain(e)
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "%" in line][-1] == "m.gguf: 1.00 MB / 1.00 MB (100%, 1.00 MB/s)"
    assert len([line for line in err if "%" in line]) == 11  # one per 10% step, not one per event
    assert "m.gguf: connection dropped at 1 MB; retrying in 1s (1/5)" in err
    assert err[-2:] == ["m.gguf: verifying checksum…", "m.gguf: already downloaded and verified"]
    with _RichProgress() as bar:
        for e in events:
            bar(e)
    assert "already downloaded and verified" in capsys.readouterr().err
