"""Hardware discovery: CPU, RAM, disk, power, and the GPUs on this machine, driven by the build or not."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from vibelocal.models.store import hf_cache_dir
from vibelocal.paths import Paths
from vibelocal.placement.build import LlamaBuildInfo, cpu_features, read_build_info
from vibelocal.types import GpuInfo, HardwareProfile


def _cpu_name() -> str:
    system = platform.system()
    try:
        if system == "Linux":
            text = Path("/proc/cpuinfo").read_text(errors="replace")
            for key in ("model name", "Hardware", "Model", "cpu model"):
                if m := re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE):
                    return m[1].strip()
        elif system == "Darwin":
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=1
            )
            if out.stdout.strip():
                return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _free_disk(path: Path) -> int | None:
    import psutil

    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return int(psutil.disk_usage(str(candidate)).free)
            except OSError:
                return None
    return None


def _nvidia_smi_gpus() -> list[GpuInfo]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=1.5,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            mib = 1024 * 1024
            gpus.append(GpuInfo(backend="cuda", name=parts[0], memory_total_bytes=int(parts[1]) * mib,
                                memory_free_bytes=int(parts[2]) * mib, usable_by_build=False))  # fmt: skip
    return gpus


def metal_working_set(ram_total_bytes: int) -> int:
    """Apple's recommended GPU working set on unified memory: about 2/3 of RAM, 3/4 above 36 GB."""
    return ram_total_bytes * 3 // 4 if ram_total_bytes > 36 * 1024**3 else ram_total_bytes * 2 // 3


def _undriven_gpus(build: LlamaBuildInfo, os_name: str, arch: str, ram_total: int) -> list[GpuInfo]:
    """GPUs present on the machine that the installed build has no backend for."""
    found: list[GpuInfo] = []
    if "cuda" not in build.backends:
        found += _nvidia_smi_gpus()
    if os_name == "Darwin" and arch == "arm64" and "metal" not in build.backends:
        budget = metal_working_set(ram_total)
        found.append(GpuInfo(backend="metal", name="Apple Silicon GPU", memory_total_bytes=budget,
                             memory_free_bytes=budget, unified_memory=True, usable_by_build=False))  # fmt: skip
    return found


def probe(paths: Paths | None = None) -> HardwareProfile:
    """Describe this machine as llama.cpp will see it. Never invents a GPU; fast (well under a second)."""
    import psutil

    del paths  # models live in the hub cache, where downloads go (hf_cache_dir); kept for the call shape
    os_name, arch = platform.system(), platform.machine().lower()
    arch = {"amd64": "x86_64", "aarch64": "arm64"}.get(arch, arch)
    vm = psutil.virtual_memory()
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    build = read_build_info()
    battery = None
    try:
        sensors = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
        battery = None if sensors is None else not sensors.power_plugged
    except (OSError, RuntimeError):
        battery = None
    return HardwareProfile(
        os=os_name,
        arch=arch,
        cpu_name=_cpu_name(),
        cpu_cores_physical=physical,
        cpu_cores_logical=logical,
        cpu_features=cpu_features(build.system_info),
        ram_total_bytes=int(vm.total),
        ram_available_bytes=int(vm.available),
        disk_free_bytes=_free_disk(hf_cache_dir()),
        on_battery=battery,
        gpus=build.gpus + _undriven_gpus(build, os_name, arch, int(vm.total)),
        build_backends=build.backends if build.found else ["cpu"],
        source="probe",
    )
