"""Local GGUFs: add_local checks, hashes once and registers; verify re-hashes and names what rotted."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from vibelocal.errors import ModelLoadError, UsageError
from vibelocal.models.catalog import parse_ref
from vibelocal.models.local import add_local, default_name, verify
from vibelocal.models.store import Registry
from vibelocal.paths import get_paths


@pytest.fixture
def mine(own_gguf: Path) -> Path:
    return own_gguf


def test_add_hashes_registers_and_lists_the_file_where_it_is(mine):
    registry = Registry(get_paths())
    seen: list[int] = []
    model = add_local(mine, registry, name="mine", on_bytes=seen.append)
    assert model.sha256 == hashlib.sha256(mine.read_bytes()).hexdigest()
    assert seen[-1] == mine.stat().st_size
    assert model.path == mine.resolve() and model.repo is None and model.quant == "Q4_1"
    assert registry.list() == [model]
    assert registry.find_local("MINE") == model
    assert registry.find(parse_ref(str(mine))) == model


def test_adding_the_same_file_again_does_not_hash_it_again(mine):
    registry = Registry(get_paths())
    add_local(mine, registry, name="mine")
    seen: list[int] = []
    again = add_local(mine, registry, name="mine", on_bytes=seen.append)
    assert seen == [] and len(registry.list()) == 1 and again.name == "mine"


def test_default_name_is_the_file_stem(mine):
    model = add_local(mine, Registry(get_paths()))
    assert model.name == "my-model.Q4_1" == default_name(model.model_copy(update={"name": None}))


@pytest.mark.parametrize("name", ["a:b", "x/y", "", "-lead", "n" * 65])
def test_bad_names_are_refused(mine, name):
    with pytest.raises(UsageError):
        add_local(mine, Registry(get_paths()), name=name)


def test_a_name_already_used_by_another_file_is_refused(mine, tmp_path):
    registry = Registry(get_paths())
    add_local(mine, registry, name="mine")
    other = tmp_path / "other.gguf"
    shutil.copyfile(mine, other)
    with pytest.raises(UsageError, match="already used"):
        add_local(other, registry, name="mine")


def test_a_file_that_is_not_gguf_is_refused_and_not_registered(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_bytes(b"hello, not a model" * 100)
    with pytest.raises(ModelLoadError):
        add_local(bad, Registry(get_paths()))
    assert Registry(get_paths()).list() == []


def test_verify_reports_ok_changed_resized_and_missing(mine, tmp_path):
    registry = Registry(get_paths())
    copies = []
    for n in range(4):
        p = tmp_path / f"copy{n}.gguf"
        shutil.copyfile(mine, p)
        copies.append(add_local(p, registry, name=f"c{n}"))
    with copies[1].path.open("r+b") as fh:  # one flipped byte in the tensor data: bit rot
        fh.seek(copies[1].size_bytes - 10)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with copies[2].path.open("ab") as fh:
        fh.write(b"\0")
    copies[3].path.unlink()
    states = {c.model.name: (c.state, c.bad) for c in verify(registry.all())}
    assert states == {
        "c0": ("ok", False),
        "c1": ("changed", True),
        "c2": ("resized", True),
        "c3": ("missing", True),
    }
