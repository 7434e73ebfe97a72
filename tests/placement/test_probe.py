"""The hardware probe: real values on this machine, GPUs usable only through the build, llama_cpp never imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vibelocal.placement import probe as probe_module
from vibelocal.placement.build import LlamaBuildInfo, read_build_info
from vibelocal.placement.probe import metal_working_set, probe
from vibelocal.types import GpuInfo

GiB, MiB = 1024**3, 1024**2
GPU_BACKENDS = {"cuda", "metal", "vulkan", "rocm", "sycl"}


def test_probe_on_this_machine_is_sane():
    import psutil

    hw = probe()
    assert hw.source == "probe"
    assert hw.cpu_cores_physical >= 1 and hw.cpu_cores_logical >= hw.cpu_cores_physical
    assert 0 < hw.ram_available_bytes <= hw.ram_total_bytes == psutil.virtual_memory().total
    assert hw.disk_free_bytes is None or hw.disk_free_bytes > 0
    assert hw.cpu_name and hw.os and hw.arch
    assert "cpu" in hw.build_backends
    if hw.arch == "x86_64":
        assert "SSE3" in hw.cpu_features or "AVX" in hw.cpu_features


def test_a_gpu_is_usable_only_through_a_backend_the_installed_build_reports():
    """Holds on any machine and build: usable GPUs are the build's own devices, the others lack a backend."""
    hw, build = probe(), read_build_info()
    usable = [g for g in hw.gpus if g.usable_by_build]
    assert all(g.backend in GPU_BACKENDS and g.backend in hw.build_backends for g in usable)
    key = [(g.backend, g.name, g.memory_total_bytes) for g in usable]
    assert key == [(g.backend, g.name, g.memory_total_bytes) for g in build.gpus]
    assert all(g.backend not in hw.build_backends for g in hw.gpus if not g.usable_by_build)
    if not GPU_BACKENDS & set(hw.build_backends):  # a CPU-only build drives no GPU, whatever the machine has
        assert usable == []


def fake_build(backends: list[str], gpus: list[GpuInfo]) -> LlamaBuildInfo:
    info = LlamaBuildInfo()
    info.found, info.backends, info.gpus = True, backends, gpus
    return info


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An nvidia-smi first on PATH that reports one 8 GiB card with 6 GiB free."""
    if sys.platform == "win32":
        pytest.skip("a shell script stands in for nvidia-smi")
    exe = tmp_path / "bin" / "nvidia-smi"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\necho 'Fake RTX, 8192, 6144'\n", encoding="utf-8")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ.get('PATH', '')}")


def test_with_a_cpu_only_build_an_nvidia_gpu_is_listed_but_not_usable(monkeypatch, fake_nvidia_smi):
    monkeypatch.setattr(probe_module, "read_build_info", lambda: fake_build(["cpu"], []))
    hw = probe()
    assert hw.build_backends == ["cpu"]
    assert not any(g.usable_by_build for g in hw.gpus)
    cuda = [(g.name, g.memory_total_bytes, g.memory_free_bytes) for g in hw.gpus if g.backend == "cuda"]
    assert cuda == [("Fake RTX", 8192 * MiB, 6144 * MiB)]


def test_with_a_cuda_build_the_gpu_comes_from_the_build_once(monkeypatch, fake_nvidia_smi):
    gpu = GpuInfo(backend="cuda", name="Fake RTX", memory_total_bytes=8 * GiB, memory_free_bytes=7 * GiB)
    monkeypatch.setattr(probe_module, "read_build_info", lambda: fake_build(["cuda", "cpu"], [gpu]))
    hw = probe()
    assert [g for g in hw.gpus if g.backend == "cuda"] == [gpu] and gpu.usable_by_build


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
