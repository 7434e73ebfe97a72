"""The hardware probe on this machine: real values, no invented GPU, llama_cpp never imported."""

from __future__ import annotations

import subprocess
import sys

from vibelocal.placement.probe import metal_working_set, probe

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


def test_metal_working_set_is_two_thirds_to_three_quarters():
    assert metal_working_set(16 * GiB) == 16 * GiB * 2 // 3
    assert metal_working_set(64 * GiB) == 48 * GiB
