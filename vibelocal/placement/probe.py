"""Hardware discovery: CPU, RAM, disk, power, and the GPUs the installed llama.cpp build can (or cannot) drive."""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import ValidationError

from vibelocal.errors import UsageError
from vibelocal.paths import Paths
from vibelocal.types import GpuInfo, HardwareProfile

# ggml_backend_dev_type values (ggml-backend.h)
_DEV_CPU, _DEV_GPU, _DEV_IGPU, _DEV_ACCEL = 0, 1, 2, 3
_BACKEND_NAMES = {"cuda": "cuda", "metal": "metal", "mtl": "metal", "vulkan": "vulkan", "hip": "rocm"}
_BACKEND_NAMES |= {"rocm": "rocm", "sycl": "sycl", "cpu": "cpu", "blas": "blas", "rpc": "rpc"}
_BUILD_FLAGS = {"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE"}
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
_CMAKE_FLAGS = {
    "cuda": "-DGGML_CUDA=on",
    "metal": "-DGGML_METAL=on",
    "vulkan": "-DGGML_VULKAN=on",
    "rocm": "-DGGML_HIP=on",
    "sycl": "-DGGML_SYCL=on",
}


class LlamaBuildInfo:
    """What the installed llama.cpp shared libraries report, read through ctypes (llama_cpp is never imported)."""

    def __init__(self) -> None:
        self.found = False
        self.system_info = ""
        self.supports_gpu_offload = False
        self.backends: list[str] = []
        self.gpus: list[GpuInfo] = []
        self.error: str | None = None


def llama_lib_dir() -> Path | None:
    """The folder holding libllama and libggml* of the installed llama-cpp-python, without importing it."""
    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        lib = Path(location) / "lib"
        if lib.is_dir():
            return lib
        if any(Path(location).glob("*llama*")):
            return Path(location)
    return None


def _load_library(lib_dir: Path, base_name: str) -> ctypes.CDLL:
    if sys.platform == "win32":
        os.add_dll_directory(str(lib_dir))
        candidates = [f"{base_name}.dll", f"lib{base_name}.dll"]
    elif sys.platform == "darwin":
        candidates = [f"lib{base_name}.dylib", f"lib{base_name}.so"]
    else:
        candidates = [f"lib{base_name}.so"]
    for name in candidates:
        if (lib_dir / name).exists():
            return ctypes.CDLL(str(lib_dir / name), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
    raise OSError(f"lib{base_name} not found in {lib_dir}")


def _sig(lib: ctypes.CDLL, name: str, restype, argtypes) -> object:
    fn = getattr(lib, name)
    fn.restype, fn.argtypes = restype, argtypes
    return fn


def read_build_info(lib_dir: Path | None = None) -> LlamaBuildInfo:
    """Enumerate the ggml backend devices the build registers, and llama.cpp's system info string."""
    info = LlamaBuildInfo()
    lib_dir = lib_dir or llama_lib_dir()
    if lib_dir is None:
        info.error = "llama-cpp-python is not installed"
        return info
    try:
        base = _load_library(lib_dir, "ggml-base")
        ggml = _load_library(lib_dir, "ggml")
        llama = _load_library(lib_dir, "llama")
    except OSError as exc:
        info.error = f"cannot load the llama.cpp libraries: {exc}"
        return info
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    reg_count = _sig(ggml, "ggml_backend_reg_count", sz, [])
    if reg_count() == 0 and hasattr(ggml, "ggml_backend_load_all_from_path"):  # a build with dynamic backends
        _sig(ggml, "ggml_backend_load_all_from_path", None, [ctypes.c_char_p])(str(lib_dir).encode())
    dev_count = _sig(ggml, "ggml_backend_dev_count", sz, [])
    dev_get = _sig(ggml, "ggml_backend_dev_get", vp, [sz])
    dev_name = _sig(base, "ggml_backend_dev_name", ctypes.c_char_p, [vp])
    dev_desc = _sig(base, "ggml_backend_dev_description", ctypes.c_char_p, [vp])
    dev_type = _sig(base, "ggml_backend_dev_type", ctypes.c_int, [vp])
    dev_memory = _sig(base, "ggml_backend_dev_memory", None, [vp, ctypes.POINTER(sz), ctypes.POINTER(sz)])
    dev_reg = _sig(base, "ggml_backend_dev_backend_reg", vp, [vp])
    reg_name = _sig(base, "ggml_backend_reg_name", ctypes.c_char_p, [vp])
    backends: list[str] = []
    for i in range(dev_count()):
        dev = dev_get(i)
        raw_backend = (reg_name(dev_reg(dev)) or b"").decode(errors="replace")
        backend = _BACKEND_NAMES.get(raw_backend.lower(), raw_backend.lower() or "other")
        if backend not in backends:
            backends.append(backend)
        kind = dev_type(dev)
        if kind not in (_DEV_GPU, _DEV_IGPU):
            continue
        free, total = sz(0), sz(0)
        dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        name = (dev_desc(dev) or dev_name(dev) or b"GPU").decode(errors="replace")
        info.gpus.append(
            GpuInfo(
                backend=backend if backend in ("cuda", "metal", "vulkan", "rocm", "sycl") else "other",
                name=name,
                memory_total_bytes=total.value,
                memory_free_bytes=free.value,
                unified_memory=backend == "metal" or kind == _DEV_IGPU,
                usable_by_build=True,
            )
        )
    info.backends = backends or ["cpu"]
    info.system_info = (_sig(llama, "llama_print_system_info", ctypes.c_char_p, [])() or b"").decode(
        errors="replace"
    )
    info.supports_gpu_offload = bool(_sig(llama, "llama_supports_gpu_offload", ctypes.c_bool, [])())
    info.found = True
    return info


def cpu_features(system_info: str) -> list[str]:
    """SIMD features llama.cpp's CPU backend was built with and found, e.g. AVX2, NEON (`X = 1` entries)."""
    features: list[str] = []
    for section in system_info.split("CPU :")[1:]:
        for name, value in re.findall(r"([A-Z0-9_]+)\s*=\s*(\w+)", section.split("\n")[0]):
            if value == "1" and name not in _BUILD_FLAGS and name not in features:
                features.append(name)
    return features


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


def models_dir(environ: dict[str, str] | None = None) -> Path:
    """Where downloaded models live: the Hugging Face hub cache (HF_HUB_CACHE, HF_HOME aware)."""
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "huggingface" / "hub"


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

    del paths  # models live in the hub cache, located by models_dir(); kept for the session's call shape
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
        disk_free_bytes=_free_disk(models_dir()),
        on_battery=battery,
        gpus=build.gpus + _undriven_gpus(build, os_name, arch, int(vm.total)),
        build_backends=build.backends if build.found else ["cpu"],
        source="probe",
    )


_PROFILE_EXTRA_KEYS = {"description", "comment"}


def load_profile(path: Path) -> HardwareProfile:
    """Read a `doctor --hardware` profile (JSON, sizes in bytes). Any problem is a UsageError (exit 2)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"hardware profile {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read hardware profile {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"hardware profile {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"hardware profile {path} must be a JSON object")
    unknown = sorted(set(data) - set(HardwareProfile.model_fields) - _PROFILE_EXTRA_KEYS)
    if unknown:
        raise UsageError(f"hardware profile {path}: unknown key {unknown[0]!r}")
    data = {k: v for k, v in data.items() if k not in _PROFILE_EXTRA_KEYS}
    backends = data.get("build_backends") or ["cpu"]
    gpus = data.get("gpus") or []
    if isinstance(backends, list) and isinstance(gpus, list):
        for gpu in gpus:  # a GPU is usable exactly when the described build has its backend, unless stated
            if isinstance(gpu, dict) and "usable_by_build" not in gpu:
                gpu["usable_by_build"] = gpu.get("backend") in backends
    data["source"] = "profile"
    try:
        profile = HardwareProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "?"
        raise UsageError(f"hardware profile {path}: {where}: {err.get('msg', 'invalid value')}") from None
    _check_profile(profile, path)
    return profile


def _check_profile(p: HardwareProfile, path: Path) -> None:
    problems = []
    if p.cpu_cores_physical < 1 or p.cpu_cores_logical < p.cpu_cores_physical:
        problems.append("cpu_cores_physical must be >= 1 and <= cpu_cores_logical")
    if p.ram_total_bytes <= 0 or not 0 <= p.ram_available_bytes <= p.ram_total_bytes:
        problems.append("ram_available_bytes must be between 0 and ram_total_bytes (> 0)")
    for gpu in p.gpus:
        if gpu.memory_total_bytes < 0 or not 0 <= gpu.memory_free_bytes <= gpu.memory_total_bytes:
            problems.append(f"gpu {gpu.name!r}: memory_free_bytes must be between 0 and memory_total_bytes")
    if problems:
        raise UsageError(f"hardware profile {path}: {problems[0]}")


def reinstall_commands(backend: str) -> list[str]:
    """The commands that rebuild llama-cpp-python with `backend` (packaging/reinstall-backend.sh knows three)."""
    flag = _CMAKE_FLAGS.get(backend)
    if flag is None:
        return []
    pipx = (
        f'CMAKE_ARGS="{flag}" pipx runpip vibelocal install --force-reinstall --no-cache-dir --no-deps '
        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    )
    if backend in ("cuda", "metal", "vulkan"):
        return [f"packaging/reinstall-backend.sh {backend}", pipx]
    return [pipx]
