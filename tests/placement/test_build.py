"""What the installed llama.cpp build reports (read without importing llama_cpp), and the rebuild advice."""

from __future__ import annotations

import tomllib
from testpaths import ROOT

from vibelocal.placement.build import LLAMA_CPP_PYTHON_VERSION, cpu_features, reinstall_commands


def test_cpu_features_from_system_info():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 0 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
    assert cpu_features(info) == ["SSE3", "AVX", "AVX2"]
    assert cpu_features("Metal : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 | DOTPROD = 1 |") == [
        "NEON",
        "ARM_FMA",
        "DOTPROD",
    ]
    assert cpu_features("") == []


def test_reinstall_commands_name_the_backend():
    cuda = reinstall_commands("cuda")
    assert cuda[0] == "vibelocal doctor --reinstall-backend cuda"
    assert 'CMAKE_ARGS="-DGGML_CUDA=on"' in cuda[1] and "llama-cpp-python==" in cuda[1]
    assert "-DGGML_METAL=on" in reinstall_commands("metal")[1]
    assert reinstall_commands("other") == []
    assert len(reinstall_commands("rocm")) == 1 and "-DGGML_HIP=on" in reinstall_commands("rocm")[0]


def test_the_rebuild_advice_names_the_pinned_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}" in deps
    script = (ROOT / "packaging" / "reinstall-backend.sh").read_text(encoding="utf-8")
    assert f"LLAMA_CPP_VERSION={LLAMA_CPP_PYTHON_VERSION}\n" in script


def test_reinstall_argv_targets_the_running_environment():
    import sys

    from vibelocal.placement.build import cmake_args, reinstall_argv

    pin = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    assert reinstall_argv("cuda", have_pip=True) == [
        sys.executable, "-m", "pip", "install", "--force-reinstall", "--no-deps", "--no-cache-dir", pin,
    ]  # fmt: skip
    uv = reinstall_argv("vulkan", python="/opt/tool/bin/python", have_pip=False)
    assert uv[:5] == ["uv", "pip", "install", "--python", "/opt/tool/bin/python"] and uv[-1] == pin
    assert (cmake_args("cpu", platform="darwin"), cmake_args("cpu", platform="linux")) == (
        "-DGGML_METAL=off",
        "",
    )
    assert cmake_args("vulkan") == "-DGGML_VULKAN=on"
