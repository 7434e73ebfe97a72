"""`vibelocal pull` / `models` / `models rm` as a user runs them: real subprocesses against the test hub server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hubserver import REPO, HubServer, manifest, write_manifest
from testpaths import make_odd_path
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


# --------------------------------------------------------------------------- hostile servers and odd input, through the CLI

SMALL = "tiny.Q4_1.gguf"


@pytest.fixture
def evil(tmp_path_factory, monkeypatch):
    """A server of its own (hostility is for good) serving a 300 kB file as o/r/tiny.Q4_1.gguf."""
    served = tmp_path_factory.mktemp("served") / SMALL
    served.write_bytes(os.urandom(300_000))
    with HubServer() as server:
        server.add_file("o/r", SMALL, served)
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_pull_refuses_a_traversal_commit_with_one_line_and_touches_nothing_outside(evil, tmp_path):
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / SMALL).write_bytes(b"the user's own file")
    evil.hostile("o/r", SMALL, commit=os.path.relpath(outside, hf_cache_dir() / "models--o--r" / "snapshots"))
    before = files_under(tmp_path)
    out = cli("pull", f"o/r/{SMALL}")
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE
    assert "commit id '../" in one_error_line(out) and out.stdout == ""
    assert files_under(tmp_path) == before and not any(p.is_symlink() for p in outside.iterdir())


@pytest.mark.parametrize(
    ("args", "env", "code", "fragment"),
    [
        (
            ["pull", "owner/../x.gguf"],
            {},
            ExitCode.MODEL_UNAVAILABLE,
            "'owner/../x.gguf' is not a valid hub file",
        ),
        (["pull", "repo/../../x.gguf"], {}, ExitCode.MODEL_UNAVAILABLE, "is not a valid hub"),
        (
            ["pull", "o/r/" + "x" * 5000 + ".gguf"],
            {},
            ExitCode.MODEL_UNAVAILABLE,
            "longer than a path allows",
        ),
        (
            ["pull", "o/r:Q4_1"],
            {"HF_HUB_DOWNLOAD_TIMEOUT": "abc"},
            ExitCode.USAGE,
            "HF_HUB_DOWNLOAD_TIMEOUT must be",
        ),
        (["pull", "o/r:Q4_1"], {"HF_HUB_ETAG_TIMEOUT": "1e9"}, ExitCode.USAGE, "HF_HUB_ETAG_TIMEOUT must be"),
    ],
)
def test_pull_of_bad_refs_and_bad_hub_settings_is_one_line_before_any_request(
    evil, args, env, code, fragment
):
    out = cli(*args, env=env)
    assert out.returncode == code
    assert fragment in one_error_line(out) and out.stdout == ""
    assert evil.counters.requests == []


def test_pull_from_a_redirect_loop_is_one_line(evil):
    evil.hostile("o/r", SMALL, redirect_loop=True)
    out = cli("pull", f"o/r/{SMALL}")
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE
    assert "in a loop" in one_error_line(out)


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"]" * 100_000, b'{"version": 1, "models": [{"size_bytes": ' + b"9" * 5000 + b"}]}",
     b'{"models": [1, 2]}', b"\xff\xfe not utf-8", b" " * (17 * 1024 * 1024)],
    ids=["100k-deep", "5000-digit-int", "not-dicts", "not-utf8", "huge"],
)  # fmt: skip
def test_a_damaged_registry_is_set_aside_said_and_kept_and_pull_rebuilds_it(evil, content):
    registry = get_paths().registry_file
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_bytes(content)
    listed = cli("models", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == {"models": []}
    assert "set aside" in listed.stderr and "Traceback" not in listed.stderr
    kept = list(registry.parent.glob("models.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content
    out = cli("pull", f"o/r/{SMALL}")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(cli("models", "--json").stdout)["models"]) == 1


def test_a_damaged_registry_found_by_pull_is_said(evil):
    registry = get_paths().registry_file
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text("[" * 100_000)
    out = cli("pull", f"o/r/{SMALL}")
    assert out.returncode == 0, out.stderr
    assert (
        "the model registry was unreadable; it was set aside as" in out.stderr
        and "Traceback" not in out.stderr
    )


@pytest.mark.parametrize("kind", ["loop", "dangling", "fifo"])
def test_a_relative_path_that_is_a_link_loop_dangling_link_or_fifo_is_a_bad_local_path(evil, tmp_path, kind):
    (tmp_path / "o").mkdir()
    make_odd_path(tmp_path / "o" / "r", kind)  # `o/r` would otherwise be taken for a hub repo
    out = subprocess.run(
        [sys.executable, "-m", "vibelocal", "pull", "o/r", "--yes"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    line = one_error_line(out)
    expected = {"loop": "symbolic link loop", "dangling": "broken symbolic link", "fifo": "named pipe (FIFO)"}
    assert expected[kind] in line and "o/r" in line
    code = ExitCode.MODEL_LOAD if kind == "fifo" else ExitCode.MODEL_UNAVAILABLE
    assert out.returncode == code and evil.counters.requests == []


def test_a_local_file_that_was_never_a_model_is_not_told_to_download_it_again(hub, tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("these are my notes, not a model " * 10)
    out = cli("pull", str(text))
    line = one_error_line(out)
    assert out.returncode == ExitCode.MODEL_LOAD and "not a GGUF model file" in line
    assert "download it again" not in line and "check the path" in line


# --------------------------------------------------------------------------- read-only and full disks (real mounts)


def _can_mount() -> bool:
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not shutil.which("unshare") or not _can_mount(), reason="needs a user namespace that may mount tmpfs"
)


def in_namespace(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `sh -c script` in a private mount namespace (mounts vanish with it); $@ are `args`."""
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", *args],
        capture_output=True, text=True, env=dict(os.environ), timeout=120,
    )  # fmt: skip


@needs_mounts
@pytest.mark.parametrize("which", ["data", "cache"])
def test_a_read_only_data_or_cache_folder_is_refused_before_any_byte(evil, which):
    folder = get_paths().registry_file.parent if which == "data" else hf_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = in_namespace(
        'mount -t tmpfs -o ro tmpfs "$1" && exec "$2" -m vibelocal pull "o/r/tiny.Q4_1.gguf"',
        str(folder), sys.executable,
    )  # fmt: skip
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE, out.stderr
    line = one_error_line(out)
    assert "is not writable" in line and str(folder) in line
    assert evil.counters.gets() == [] and evil.counters.body_bytes == 0


@needs_mounts
def test_a_disk_that_fills_up_mid_download_is_one_line_exit_4_and_the_partial_is_kept(evil):
    # The free-space check before the download is faked to pass (a tmpfs too small for the 256 MB margin would
    # fail it, which is the other test); the disk that then fills up is a real 200 kB tmpfs.
    hf = hf_cache_dir()
    hf.mkdir(parents=True)
    driver = (
        "import vibelocal.models.download as d; d._disk_free = lambda p: 1 << 50; "
        "from vibelocal.cli import main; main(['pull', 'o/r/tiny.Q4_1.gguf'])"
    )
    out = in_namespace(
        'mount -t tmpfs -o size=200k tmpfs "$1" && "$2" -c "$3"; rc=$?; ls -l "$1"/models--o--r/blobs >&2; exit $rc',
        str(hf), sys.executable, driver,
    )  # fmt: skip
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in out.stderr
    assert "the disk filled up while writing tiny.Q4_1.gguf" in errors[0] and "resumes" in errors[0]
    assert ".incomplete" in out.stderr  # the partial stayed, for the resume
    assert Registry(get_paths()).list() == []
