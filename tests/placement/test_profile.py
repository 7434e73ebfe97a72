"""`doctor --hardware` profile files: every fixture loads, GPU usability follows the build, bad files are one line."""

from __future__ import annotations

import json

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
    with pytest.raises(UsageError, match="does not exist"):
        load_profile(tmp_path / "missing.json")
