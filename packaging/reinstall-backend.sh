#!/usr/bin/env bash
# Reinstall llama-cpp-python inside vibelocal's pipx venv with a chosen GPU backend.
set -euo pipefail

LLAMA_CPP_VERSION=0.3.36
APP=${VIBELOCAL_PIPX_APP:-vibelocal}

usage() {
  cat <<USAGE
usage: $(basename "$0") BACKEND [--wheel-index URL] [--dry-run] [--verbose]

Reinstall llama-cpp-python==${LLAMA_CPP_VERSION} inside the pipx venv of '${APP}' with BACKEND:
  cpu      no GPU (CMAKE_ARGS="-DGGML_METAL=off" on macOS so the build is really CPU-only)
  cuda     NVIDIA, needs the CUDA toolkit           (CMAKE_ARGS="-DGGML_CUDA=on")
  metal    Apple Silicon, the macOS arm64 default   (CMAKE_ARGS="-DGGML_METAL=on")
  vulkan   AMD/Intel/NVIDIA, needs the Vulkan SDK   (CMAKE_ARGS="-DGGML_VULKAN=on")

Options:
  --wheel-index URL  try a prebuilt wheel index first, e.g.
                     https://abetlen.github.io/llama-cpp-python/whl/cu124 (falls back to a source build)
  --dry-run          print the command, run nothing
  --verbose          show the build output (look for "CUDA found" / "Vulkan found")
  -h, --help         this text

Environment:
  CMAKE_ARGS_EXTRA   appended to CMAKE_ARGS (e.g. -DCMAKE_CUDA_ARCHITECTURES=native)
  VIBELOCAL_PIPX_APP the pipx app name (default: vibelocal)
USAGE
}

backend=""
index=""
dry_run=0
verbose=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --wheel-index) [ $# -ge 2 ] || { echo "error: --wheel-index needs a URL" >&2; exit 2; }; index=$2; shift ;;
    --dry-run) dry_run=1 ;;
    --verbose) verbose=(--verbose) ;;
    cpu|cuda|metal|vulkan) [ -z "$backend" ] || { echo "error: one backend only" >&2; exit 2; }; backend=$1 ;;
    *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$backend" ] || { usage >&2; exit 2; }

case "$backend" in
  cpu)
    if [ "$(uname -s)" = "Darwin" ]; then cmake_args="-DGGML_METAL=off"; else cmake_args=""; fi ;;
  cuda) cmake_args="-DGGML_CUDA=on" ;;
  metal) cmake_args="-DGGML_METAL=on" ;;
  vulkan) cmake_args="-DGGML_VULKAN=on" ;;
esac
cmake_args="${cmake_args}${CMAKE_ARGS_EXTRA:+ ${CMAKE_ARGS_EXTRA}}"

cmd=(pipx runpip "$APP" install --force-reinstall --no-cache-dir --no-deps ${verbose[@]+"${verbose[@]}"})
if [ -n "$index" ]; then
  cmd+=(--prefer-binary --extra-index-url "$index")
fi
cmd+=("llama-cpp-python==${LLAMA_CPP_VERSION}")

echo "backend:    $backend"
echo "CMAKE_ARGS: ${cmake_args:-(none)}"
echo "running:    CMAKE_ARGS=\"${cmake_args}\" ${cmd[*]}"
if [ "$dry_run" -eq 1 ]; then
  echo "(dry run: nothing was changed)"
  exit 0
fi
command -v pipx >/dev/null || { echo "error: pipx is not installed (https://pipx.pypa.io)" >&2; exit 1; }
echo "building llama.cpp can take several minutes..."
CMAKE_ARGS="$cmake_args" FORCE_CMAKE=1 "${cmd[@]}"
echo "done. Check the backend with: vibelocal doctor"
