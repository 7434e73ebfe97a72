"""Hardware probe on this machine (real values, no invented GPU) and `--hardware` profile files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from testpaths import FIXTURES

from vibelocal.errors import ExitCode, UsageError
from vibelocal.placement.probe import (
    cpu_features,
    load_profile,
    metal_working_set,
    models_dir,
    probe,
    reinstall_commands,
)

PROFILES = FIXTURES / "profiles"
GiB = 1024**3


def test_probe_on_this_machine_is_sane():
    import psutil

    hw = probe()
    assert hw.source == "probe"
    assert hw.cpu_cores_physical >= 1 and hw.cpu_cores_logical >= hw.cpu_cores_physical
    assert 0 < hw.ram_available_bytes <= hw.ram_total_bytes == psutil.virtual_memory().total
    assert hw.disk_free_bytes is None or hw.disk_free_bytes > 0
    assert hw.cpu_name and hw.os and hw.arch
    assert "cpu" in hw.build_backends
    # This machine has no GPU and a CPU-only build: the probe must not invent one.
    assert [g for g in hw.gpus if g.usable_by_build] == []
    if hw.arch == "x86_64":
        assert "SSE3" in hw.cpu_features or "AVX" in hw.cpu_features


def test_probe_never_imports_llama_cpp():
    code = (
        "import sys; from vibelocal.placement.probe import probe; probe(); print('llama_cpp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cpu_features_from_system_info():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
    assert cpu_features(info) == ["SSE3", "AVX", "AVX2"]
    assert cpu_features("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 | DOTPROD = 1 |") == [
        "NEON",
        "ARM_FMA",
        "DOTPROD",
    ]
    assert cpu_features("") == []


def test_models_dir_follows_hf_variables(tmp_path):
    assert models_dir({"HF_HUB_CACHE": str(tmp_path / "c")}) == tmp_path / "c"
    assert models_dir({"HF_HOME": str(tmp_path / "h")}) == tmp_path / "h" / "hub"
    assert models_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "huggingface" / "hub"


def test_metal_working_set_is_two_thirds_to_three_quarters():
    assert metal_working_set(16 * GiB) == 16 * GiB * 2 // 3
    assert metal_working_set(64 * GiB) == 48 * GiB


def test_reinstall_commands_name_the_backend():
    cuda = reinstall_commands("cuda")
    assert cuda[0] == "packaging/reinstall-backend.sh cuda"
    assert 'CMAKE_ARGS="-DGGML_CUDA=on"' in cuda[1] and "llama-cpp-python==" in cuda[1]
    assert "-DGGML_METAL=on" in reinstall_commands("metal")[1]
    assert reinstall_commands("other") == []
    assert len(reinstall_commands("rocm")) == 1 and "-DGGML_HIP=on" in reinstall_commands("rocm")[0]


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
