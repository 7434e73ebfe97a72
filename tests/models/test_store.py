"""The installed-model registry, user-given GGUF paths, and the hub cache helpers."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import pytest
from testpaths import make_odd_path

from vibelocal.errors import ExitCode, ModelLoadError, ModelUnavailableError
from vibelocal.models.catalog import Catalog, parse_ref
from vibelocal.models.store import (
    CachedFile,
    Registry,
    cached_file_for,
    delete_model_file,
    expected_digest,
    file_digest,
    hf_cache_dir,
    model_from_path,
    quant_from_name,
)
from vibelocal.paths import get_paths
from vibelocal.types import InstalledModel


def fake_model(tmp_path: Path, name: str, quant: str, *, repo="prithivMLmods/VibeThinker-3B-GGUF", size=16):
    path = tmp_path / f"VibeThinker-3B.{quant}.gguf"
    path.write_bytes(b"GGUF" + b"\0" * (size - 4))
    return InstalledModel(
        path=path,
        size_bytes=size,
        sha256="a" * 64,
        name=name,
        quant=quant,
        repo=repo,
        file=path.name,
        verified=True,
    )


@pytest.fixture
def registry() -> Registry:
    return Registry(get_paths())


def test_add_list_and_atomic_file(registry, tmp_path):
    m = fake_model(tmp_path, "vibethinker-3b", "Q4_K_M")
    registry.add(m)
    assert registry.list() == [m]
    data = json.loads(registry.file.read_text())
    assert data["version"] == 1 and data["models"][0]["verified_at"].endswith("Z")
    left = sorted(p.name for p in registry.file.parent.iterdir())
    assert left in (["models.json"], ["models.json", "models.json.lock"])  # no temp file left behind
    registry.add(m)  # same path: replaced, not duplicated
    assert len(registry.list()) == 1


def test_only_verified_or_hashed_models_are_added(registry, tmp_path):
    m = fake_model(tmp_path, "vibethinker-3b", "Q4_K_M").model_copy(
        update={"verified": False, "sha256": None}
    )
    with pytest.raises(ValueError):
        registry.add(m)


def test_list_drops_missing_and_resized_files(registry, tmp_path):
    a = fake_model(tmp_path, "vibethinker-3b", "Q4_K_M")
    b = fake_model(tmp_path, "vibethinker-3b", "Q8_0")
    registry.add(a)
    registry.add(b)
    a.path.unlink()
    assert registry.list() == [b]
    b.path.write_bytes(b"GGUF")  # truncated: no longer the verified file
    assert registry.list() == []


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"models": [{"path": 3}]}',
        '{"models": "x"}',
        "\xff",
        '{"models": [1]}',
        "[" * 100_000,
        '{"models": [{"size_bytes": ' + "7" * 5000 + "}]}",
    ],
    ids=["not-json", "list", "bad-entry", "models-str", "latin1", "int-entry", "100k-deep", "5000-digits"],
)
def test_corrupt_registry_is_set_aside_never_a_traceback(registry, tmp_path, content):
    registry.file.parent.mkdir(parents=True, exist_ok=True)
    registry.file.write_text(content, encoding="latin-1")
    assert registry.list() == []
    assert registry.recovered_from is not None and registry.recovered_from.exists()
    assert registry.recovered_from.read_text(encoding="latin-1") == content  # the copy is kept as it was
    m = fake_model(tmp_path, "vibethinker-3b", "Q4_K_M")
    registry.add(m)
    assert Registry(get_paths()).list() == [m]


def test_find_alias_prefers_named_then_default_quant(registry, tmp_path):
    catalog = Catalog()
    q8 = fake_model(tmp_path, "vibethinker-3b", "Q8_0")
    q4 = fake_model(tmp_path, "vibethinker-3b", "Q4_K_M")
    registry.add(q8)
    assert registry.find(parse_ref("vibethinker-3b", catalog)) == q8  # any installed quant
    assert (
        registry.find(parse_ref("vibethinker-3b:Q4_K_M", catalog)) is None
    )  # a quant in the ref is required
    registry.add(q4)
    assert registry.find(parse_ref("vibethinker-3b", catalog)) == q4  # the manifest default wins
    assert registry.find(parse_ref("vibethinker-3b", catalog), quant="Q8_0") == q8  # a preference
    assert registry.find(parse_ref("vibethinker-3b:q8_0", catalog)) == q8


def test_find_hub_refs_and_paths(registry, tmp_path):
    catalog = Catalog()
    m = fake_model(tmp_path, "vibethinker-3b", "Q6_K", repo="mradermacher/VibeThinker-3B-GGUF")
    registry.add(m)
    assert registry.find(parse_ref("mradermacher/VibeThinker-3B-GGUF:Q6_K", catalog)) == m
    assert registry.find(parse_ref("mradermacher/VibeThinker-3B-GGUF:Q8_0", catalog)) is None
    assert registry.find(parse_ref(f"mradermacher/VibeThinker-3B-GGUF/{m.file}", catalog)) == m
    assert registry.find(parse_ref(f"prithivMLmods/VibeThinker-3B-GGUF/{m.file}", catalog)) is None
    assert registry.find(parse_ref(str(m.path), catalog)) == m


def test_remove_alias_takes_every_quant_and_a_quant_takes_one(registry, tmp_path):
    catalog = Catalog()
    q4, q8 = fake_model(tmp_path, "vibethinker-3b", "Q4_K_M"), fake_model(tmp_path, "vibethinker-3b", "Q8_0")
    registry.add(q4)
    registry.add(q8)
    assert registry.remove(parse_ref("vibethinker-3b:Q8_0", catalog)) == [q8]
    assert registry.list() == [q4]
    registry.add(q8)
    assert sorted(m.quant for m in registry.remove(parse_ref("vibethinker-3b", catalog))) == [
        "Q4_K_M",
        "Q8_0",
    ]
    assert registry.list() == [] and registry.remove(parse_ref("vibethinker-3b", catalog)) == []


# --------------------------------------------------------------------------- user-given paths


def test_model_from_path_accepts_a_real_gguf(smollm2_path, tmp_path):
    m = model_from_path(smollm2_path)
    assert m.verified is False and m.sha256 is None
    assert m.size_bytes == smollm2_path.stat().st_size and m.quant == "Q4_1" and m.name is None
    named = tmp_path / "VibeThinker-3B.Q8_0.gguf"
    os.symlink(smollm2_path, named)
    hit = model_from_path(named)
    assert (hit.name, hit.quant) == ("vibethinker-3b", "Q8_0")  # the catalog knows the file name


def test_model_from_path_missing_is_exit_4_naming_the_path(tmp_path):
    with pytest.raises(ModelUnavailableError) as err:
        model_from_path(tmp_path / "nope.gguf")
    assert (
        str(tmp_path / "nope.gguf") in err.value.message and err.value.exit_code == ExitCode.MODEL_UNAVAILABLE
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "is a directory"),
        (b"", "empty"),
        (b"PK\x03\x04" + b"\0" * 60, "not a GGUF model file"),
        (b"GGUF\x03\x00\x00", "not a GGUF model file"),
    ],
)
def test_model_from_path_bad_files_are_exit_5(tmp_path, content, fragment):
    target = tmp_path / "m.gguf"
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    with pytest.raises(ModelLoadError) as err:
        model_from_path(target)
    assert fragment in err.value.message and err.value.exit_code == ExitCode.MODEL_LOAD


def test_model_from_path_truncated_gguf_is_exit_5(smollm2_path, tmp_path):
    cut = tmp_path / "cut.gguf"
    with smollm2_path.open("rb") as fh:
        cut.write_bytes(fh.read(5_000_000))
    with pytest.raises(ModelLoadError) as err:
        model_from_path(cut)
    assert "truncated" in err.value.message


# --------------------------------------------------------------------------- the hub cache


HUB_VARIABLES = (
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_HOME",
    "XDG_CACHE_HOME",
    "HUGGINGFACE_CO_STAGING",
)


def hub_constants_cache() -> Path:
    """HF_HUB_CACHE as the installed huggingface_hub computes it, from a fresh copy of its constants module."""
    origin = importlib.util.find_spec("huggingface_hub.constants").origin
    spec = importlib.util.spec_from_file_location("fresh_hub_constants", origin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.HF_HUB_CACHE)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"XDG_CACHE_HOME": "{tmp}/xdg"},
        {"XDG_CACHE_HOME": "{tmp}/xdg", "HF_HOME": "{tmp}/home"},
        {"HF_HOME": "~/hf-home"},
        {"HF_HOME": "$ROOTDIR/home"},
        {"HF_HOME": "{tmp}/home", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy"},
        {"HF_HOME": "{tmp}/home", "HUGGINGFACE_HUB_CACHE": "{tmp}/legacy", "HF_HUB_CACHE": "$ROOTDIR/new"},
        {"HF_HUB_CACHE": "~/hub"},
    ],
    ids=lambda env: "+".join(env) or "defaults",
)
def test_hf_cache_dir_resolves_as_huggingface_hub_does(monkeypatch, tmp_path, env):
    for name in HUB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("ROOTDIR", str(tmp_path / "root"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert hf_cache_dir() == hub_constants_cache()
    assert hf_cache_dir().is_relative_to(tmp_path)


def test_hf_cache_dir_is_read_on_every_call_and_ignores_empty_values(monkeypatch, tmp_path):
    for name in HUB_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "h"))
    assert hf_cache_dir() == tmp_path / "h" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hf_cache_dir() == tmp_path / "legacy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "c"))
    assert hf_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("HF_HUB_CACHE", "")  # empty counts as unset, not as the current directory
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", "")
    monkeypatch.setenv("HF_HOME", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"


def test_cached_file_link_describe_and_delete(tmp_path):
    cache = tmp_path / "hub"
    entry = CachedFile(cache, "o/r", "sub/x.Q4_K_M.gguf", "e" * 64, "c" * 40)
    entry.blob.parent.mkdir(parents=True)
    entry.blob.write_bytes(b"GGUF")
    entry.link("main")
    assert entry.pointer.read_bytes() == b"GGUF" and (entry.storage / "refs" / "main").read_text() == "c" * 40
    assert cached_file_for(entry.pointer, cache) == entry
    assert cached_file_for(tmp_path / "elsewhere.gguf", cache) is None
    model = InstalledModel(path=entry.pointer, size_bytes=4, verified=True)
    assert delete_model_file(model, cache) is True
    assert not entry.blob.exists() and not entry.pointer.exists()
    outside = InstalledModel(path=tmp_path / "mine.gguf", size_bytes=4)
    assert delete_model_file(outside, cache) is False  # never deletes a user's own file


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        ('"' + "ab" * 32 + '"', ("sha256", "ab" * 32)),
        ("CD" * 20, ("git-sha1", "cd" * 20)),
        ("W/abc", None),
    ],
)
def test_expected_digest(etag, expected):
    assert expected_digest(etag) == expected


def test_file_digest_sha256_and_git_blob_sha1(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"hello\n")
    assert file_digest(f, "sha256") == hashlib.sha256(b"hello\n").hexdigest()
    assert file_digest(f, "git-sha1") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object`


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("VibeThinker-3B.Q4_K_M.gguf", "Q4_K_M"),
        ("x-IQ4_XS.gguf", "IQ4_XS"),
        ("m.bf16.gguf", "BF16"),
        ("m.gguf", None),
    ],
)
def test_quant_from_name(name, quant):
    assert quant_from_name(name) == quant


def test_a_registry_too_big_to_be_one_is_set_aside_unread(registry, tmp_path, monkeypatch):
    import vibelocal.models.store as store

    monkeypatch.setattr(store, "REGISTRY_MAX_BYTES", 1000)
    registry.file.parent.mkdir(parents=True, exist_ok=True)
    registry.file.write_text('{"version": 1, "models": []}' + " " * 2000)  # valid JSON, but too big
    assert registry.list() == [] and registry.recovered_from is not None
    assert not registry.file.exists()


def test_parallel_processes_adding_to_one_registry_lose_no_entry(tmp_path):
    """The lock is a real file lock: two processes, 40 adds each at once, all 80 entries are there."""
    import subprocess
    import sys

    script = """
import sys
from pathlib import Path
from vibelocal.models.store import Registry
from vibelocal.types import InstalledModel
folder, tag = Path(sys.argv[1]), sys.argv[2]
registry = Registry()
for i in range(40):
    path = folder / f"{tag}-{i}.gguf"
    path.write_bytes(b"GGUF")
    registry.add(InstalledModel(path=path, size_bytes=4, verified=True))
"""
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), tag], env=dict(os.environ))
        for tag in ("a", "b")
    ]
    assert [p.wait(120) for p in procs] == [0, 0]
    assert len(Registry(get_paths()).list()) == 80


@pytest.mark.parametrize(
    ("part", "value"),
    [("commit", "../../x"), ("etag", "../../x"), ("file", "../x.gguf"), ("repo", "o/..")],
)
def test_a_cached_file_refuses_parts_that_are_paths(tmp_path, part, value):
    from vibelocal.models.cachepath import UnsafePathError

    parts = {"repo": "o/r", "file": "x.gguf", "etag": "e" * 64, "commit": "c" * 40, part: value}
    with pytest.raises((UnsafePathError, ModelUnavailableError)):
        CachedFile(tmp_path, parts["repo"], parts["file"], parts["etag"], parts["commit"])


def test_delete_never_follows_a_snapshot_to_a_blob_outside_the_cache(tmp_path):
    cache = tmp_path / "hub"
    outside = tmp_path / "elsewhere" / "blobs"
    outside.mkdir(parents=True)
    precious = outside / ("e" * 64)
    precious.write_bytes(b"a user's file")
    pointer = cache / "models--o--r" / "snapshots" / ("c" * 40) / "x.gguf"
    pointer.parent.mkdir(parents=True)
    pointer.symlink_to(precious)
    assert delete_model_file(InstalledModel(path=pointer, size_bytes=13, verified=True), cache) is True
    assert precious.read_bytes() == b"a user's file"  # only the link inside the cache went
    assert not pointer.is_symlink()


@pytest.mark.parametrize("kind", ["loop", "dangling", "fifo"])
def test_model_from_path_names_links_to_nothing_loops_and_fifos(tmp_path, kind):
    path = tmp_path / "m.gguf"
    make_odd_path(path, kind)
    with pytest.raises((ModelUnavailableError, ModelLoadError)) as err:
        model_from_path(path)  # never blocks on the FIFO
    fragment = {"loop": "symbolic link loop", "dangling": "broken symbolic link", "fifo": "named pipe"}[kind]
    assert fragment in err.value.message
