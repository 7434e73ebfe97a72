"""Offline and unreachable hubs: the classification, the probe, and what `pull` / `solve` print for them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from clirun import vibelocal
from hubserver import manifest, write_manifest

from vibelocal.errors import ExitCode
from vibelocal.models.reach import bounded_probe, host_of, is_unreachable, offline_error, probe
from vibelocal.models.transfer import http_library


def refused_endpoint() -> str:
    """A loopback port that was just bound and closed: nothing listens there, so connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def real_failure(endpoint: str) -> Exception:
    """The exception huggingface_hub's HTTP library really raises for `endpoint`."""
    httpx = http_library()
    try:
        httpx.get(endpoint, timeout=5)
    except Exception as exc:
        return exc
    raise AssertionError(f"{endpoint} answered")


def test_a_refused_connection_is_unreachable():
    assert is_unreachable(real_failure(refused_endpoint()))


def test_an_unresolvable_name_is_unreachable():
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    wrapped = RuntimeError("request failed")
    wrapped.__cause__ = exc
    assert is_unreachable(exc) and is_unreachable(wrapped)


@pytest.mark.parametrize("exc", [TimeoutError("read timed out"), ValueError("bad header"), OSError(5, "EIO")])
def test_other_failures_are_not_unreachable(exc):
    assert not is_unreachable(exc)


def test_probe_says_why_and_none_when_it_answers():
    why = probe(refused_endpoint(), timeout_s=2)
    assert why is not None and why.startswith("cannot connect to 127.0.0.1:")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert probe(f"http://127.0.0.1:{server.getsockname()[1]}", timeout_s=2) is None


def test_the_message_is_short_and_names_the_ways_forward():
    err = offline_error("https://huggingface.co")
    line = f"error: {err.message} ({err.hint})"
    assert len(line) <= 160, line
    for way in ("offline", "huggingface.co", "--model PATH.gguf", "HF_ENDPOINT=<mirror>", "vibelocal pull"):
        assert way in line
    assert err.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert host_of("http://127.0.0.1:9") == "127.0.0.1:9"


@pytest.fixture
def smol_catalog(smollm2_path: Path) -> None:
    write_manifest(manifest(["test-org/smol-GGUF"], smollm2_path.name, smollm2_path.stat().st_size))


@pytest.mark.parametrize(
    "command", [["pull", "smol-test"], ["solve", "--model", "smol-test", "--yes", "-p", "2+3?"]]
)
@pytest.mark.parametrize("how", ["refused", "HF_HUB_OFFLINE"])
def test_the_cli_says_offline_in_one_short_line_with_exit_4(smol_catalog, command, how):
    env = {"HF_ENDPOINT": refused_endpoint()} if how == "refused" else {"HF_HUB_OFFLINE": "1"}
    out = vibelocal(*command, env=env)
    assert out.returncode == ExitCode.MODEL_UNAVAILABLE, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: offline") and len(line) <= 160, line
    assert "--model PATH.gguf" in line
    assert "retrying" not in out.stderr  # classified at the first failure, not after five retries


def test_a_probe_that_hangs_is_cut_short_and_counts_as_unreachable(monkeypatch):
    import threading

    from vibelocal.models import reach

    release = threading.Event()

    def stuck_lookup(endpoint, timeout_s):  # a name lookup that never returns (no network, no resolver)
        release.wait(30)
        return None

    monkeypatch.setattr(reach, "probe", stuck_lookup)
    try:
        why = bounded_probe("https://huggingface.co", timeout_s=0.2)
        assert why == "no answer from huggingface.co within 1 s"  # the stuck lookup would have said None
    finally:
        release.set()
