"""`doctor --hardware` profile files: every fixture loads, GPU usability follows the build, bad files are one line."""

from __future__ import annotations

import json
import re

import pytest
from testpaths import FIXTURES

from vibelocal.errors import ExitCode, UsageError
from vibelocal.placement.profile import load_profile

PROFILES = FIXTURES / "profiles"
GiB = 1024**3


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.json")), ids=lambda p: p.stem)
def test_every_fixture_profile_loads(path):
    hw = load_profile(path)
    assert hw.source == "profile"
    assert hw.ram_total_bytes > 0


def test_gpu_usability_follows_the_build_backends():
    assert load_profile(PROFILES / "rtx4060_32gb.json").gpus[0].usable_by_build is True
    assert load_profile(PROFILES / "nvidia_cpu_build.json").gpus[0].usable_by_build is False


def _bad(tmp_path, content: str) -> str:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        load_profile(path)
    assert err.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(err.value)
    return str(err.value)


def test_bad_profiles_are_one_line_usage_errors(tmp_path):
    good = json.loads((PROFILES / "intel_8gb_nogpu.json").read_text())
    assert "not valid JSON" in _bad(tmp_path, "{nope")
    assert "JSON object" in _bad(tmp_path, "[1, 2]")
    assert "unknown key 'ram_gb'" in _bad(tmp_path, json.dumps({**good, "ram_gb": 8}))
    missing = {k: v for k, v in good.items() if k != "ram_total_bytes"}
    assert "ram_total_bytes" in _bad(tmp_path, json.dumps(missing))
    assert "ram_available_bytes" in _bad(tmp_path, json.dumps({**good, "ram_available_bytes": 99 * GiB}))
    gpu = {"backend": "tpu", "name": "x", "memory_total_bytes": 1, "memory_free_bytes": 1}
    assert "gpus.0.backend" in _bad(tmp_path, json.dumps({**good, "gpus": [gpu]}))
    with pytest.raises(UsageError, match="hardware profile not found"):
        load_profile(tmp_path / "missing.json")


def _good_profile() -> dict:
    return json.loads((PROFILES / "rtx4060_32gb.json").read_text(encoding="utf-8"))


def test_a_5000_digit_integer_is_one_line(tmp_path):
    text = json.dumps({**_good_profile(), "ram_total_bytes": 0})
    text = text.replace('"ram_total_bytes": 0', '"ram_total_bytes": ' + "9" * 5000)
    message = _bad(tmp_path, text)
    assert "an integer of 5,000 digits (the limit is 64)" in message


def test_100k_deep_json_is_one_line(tmp_path):
    message = _bad(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert "nested 100,000 levels deep (the limit is 64)" in message


@pytest.mark.parametrize(
    ("special", "kind"), [("fifo", "a named pipe (FIFO)"), ("/dev/zero", "a character device")]
)
def test_special_files_are_refused_at_once(tmp_path, special, kind):
    import os
    from pathlib import Path

    path = tmp_path / "hw.json"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path = Path(special)
    with pytest.raises(UsageError, match=re.escape(f"is {kind}, not a hardware profile")):
        load_profile(path)


def test_a_huge_profile_is_refused_with_exact_numbers(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 1_000_001)
    with pytest.raises(UsageError, match=r"is too large: 1,000,001 bytes \(the limit is 1,000,000 bytes\)"):
        load_profile(path)
