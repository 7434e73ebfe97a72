"""The installed llama.cpp build: what its shared libraries can drive (read via ctypes), and how to rebuild it."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys
from pathlib import Path

from vibelocal.types import GpuInfo

# ggml_backend_dev_type values (ggml-backend.h)
_DEV_CPU, _DEV_GPU, _DEV_IGPU, _DEV_ACCEL = 0, 1, 2, 3
_BACKEND_NAMES = {"cuda": "cuda", "metal": "metal", "mtl": "metal", "vulkan": "vulkan", "hip": "rocm"}
_BACKEND_NAMES |= {"rocm": "rocm", "sycl": "sycl", "cpu": "cpu", "blas": "blas", "rpc": "rpc"}
_BUILD_FLAGS = {"LLAMAFILE", "OPENMP", "REPACK", "KLEIDIAI", "ACCELERATE"}


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


# --------------------------------------------------------------------------- rebuild advice

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
"""The llama-cpp-python pyproject.toml pins (and packaging/reinstall-backend.sh rebuilds)."""
_CMAKE_FLAGS = {
    "cuda": "-DGGML_CUDA=on",
    "metal": "-DGGML_METAL=on",
    "vulkan": "-DGGML_VULKAN=on",
    "rocm": "-DGGML_HIP=on",
    "sycl": "-DGGML_SYCL=on",
}


SWITCHABLE = ("cpu", "cuda", "metal", "vulkan")
"""Backends `vibelocal doctor --reinstall-backend` rebuilds (as packaging/reinstall-backend.sh does)."""


def cmake_args(backend: str, *, platform: str = sys.platform) -> str:
    """CMAKE_ARGS for a build with `backend` (cpu on macOS turns Metal off, or it would be on)."""
    if backend == "cpu":
        return "-DGGML_METAL=off" if platform == "darwin" else ""
    return _CMAKE_FLAGS[backend]


def reinstall_argv(backend: str, *, python: str | None = None, have_pip: bool | None = None) -> list[str]:
    """The command that rebuilds llama-cpp-python with `backend` in the environment `python` runs in.

    pip when that environment has it (venvs, and pipx venvs through pipx's shared pip), else `uv pip --python`
    (uv tool environments ship no pip). `--no-cache-dir` matters: a cached wheel has the old backend.
    """
    python = python or sys.executable
    if have_pip is None:
        have_pip = importlib.util.find_spec("pip") is not None
    pin = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    flags = ["--force-reinstall", "--no-deps"]
    if have_pip:
        return [python, "-m", "pip", "install", *flags, "--no-cache-dir", pin]
    return ["uv", "pip", "install", "--python", python, *flags, "--no-cache", pin]


def reinstall_commands(backend: str) -> list[str]:
    """How to rebuild llama-cpp-python with `backend`: the built-in switch first (for pipx and venv installs
    alike), then the raw pipx command it amounts to."""
    flag = _CMAKE_FLAGS.get(backend)
    if flag is None:
        return []
    pipx = (
        f'CMAKE_ARGS="{flag}" pipx runpip vibelocal install --force-reinstall --no-cache-dir --no-deps '
        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    )
    if backend in SWITCHABLE:
        return [f"vibelocal doctor --reinstall-backend {backend}", pipx]
    return [pipx]
