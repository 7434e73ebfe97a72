"""cachepath: the shape checks on server values that become paths, and the inside-the-cache check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vibelocal.errors import ExitCode, UnknownModelError
from vibelocal.models.cachepath import (
    UnsafePathError,
    check_blob_name,
    check_commit,
    check_hub_file,
    ensure_inside,
    file_problem,
    repo_problem,
)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0123456789abcdef0123456789abcdef01234567", True),
        ("0123456789ABCDEF0123456789ABCDEF01234567", False),  # the hub's ids are lowercase
        ("../../../../home/me/.ssh", False),
        ("a" * 39, False),
        ("a" * 41, False),
        ("a" * 40 + "\n", False),
        ("", False),
        (None, False),
    ],
)
def test_commit_ids_are_exactly_40_lowercase_hex(value, ok):
    if ok:
        assert check_commit(value, "o/r/x.gguf") == value
    else:
        with pytest.raises(UnsafePathError) as err:
            check_commit(value, "o/r/x.gguf")
        assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE and "\n" not in err.value.message


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ab" * 32, True),
        ("cd" * 20, True),  # a git blob id (small non-LFS file)
        ("ab" * 32 + ".lock", False),
        ("../../x", False),
        ("a" * 50, False),
        ("/" + "a" * 63, False),
        ("", False),
    ],
)
def test_blob_names_are_a_sha256_or_a_git_blob_id(value, ok):
    if ok:
        assert check_blob_name(value, "o/r/x.gguf") == value
    else:
        with pytest.raises(UnsafePathError):
            check_blob_name(value, "o/r/x.gguf")


@pytest.mark.parametrize(
    ("repo", "bad"),
    [
        ("prithivMLmods/VibeThinker-3B-GGUF", False),
        ("owner/..", True),
        ("repo/..", True),
        ("a--b/c", True),
        ("o/" + "r" * 100, True),
        ("one-part", True),
        ("a/b/c", True),
    ],
)
def test_repo_ids_follow_huggingface_hubs_rules(repo, bad):
    assert (repo_problem(repo) is not None) == bad


@pytest.mark.parametrize(
    ("file", "bad"),
    [
        ("VibeThinker-3B.Q4_K_M.gguf", False),
        ("sub/dir/x.gguf", False),
        ("../x.gguf", True),
        ("a/../../x.gguf", True),
        ("/etc/passwd", True),
        ("C:/Windows/x.gguf", True),
        ("a\\..\\x.gguf", True),
        ("a//b.gguf", True),
        ("./x.gguf", True),
        ("x\0.gguf", True),
        ("x" * 256 + ".gguf", True),
        ("", True),
    ],
)
def test_file_names_follow_huggingface_hubs_rules_and_fit_a_path(file, bad):
    assert (file_problem(file) is not None) == bad


def test_a_bad_typed_ref_is_an_unknown_model_and_a_bad_served_name_is_unsafe():
    with pytest.raises(UnknownModelError) as typed:
        check_hub_file("owner/..", "x.gguf", source="you")
    assert typed.value.message.startswith("'owner/../x.gguf' is not a valid hub file")
    assert not isinstance(typed.value, UnsafePathError)
    with pytest.raises(UnsafePathError) as served:
        check_hub_file("o/r", "../../x.gguf")
    assert served.value.message.startswith("refusing a file name from the server")


def test_ensure_inside_resolves_linked_folders_but_not_the_last_link(tmp_path):
    cache = tmp_path / "cache"
    (cache / "snapshots").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    ensure_inside(cache, cache / "snapshots" / "a" / "b.gguf")  # not yet there: checked as written
    (cache / "snapshots" / "link").symlink_to(os.path.relpath(outside, cache / "snapshots"))
    with pytest.raises(UnsafePathError):
        ensure_inside(cache, cache / "snapshots" / "link" / "x.gguf")
    with pytest.raises(UnsafePathError):
        ensure_inside(cache, cache / ".." / "outside" / "x.gguf")
    (cache / "snapshots" / "pointer").symlink_to(
        outside / "x"
    )  # a link may point anywhere; its folder may not
    ensure_inside(cache, cache / "snapshots" / "pointer")
    linked_cache = tmp_path / "linked"
    linked_cache.symlink_to(cache)  # the cache itself behind a link (~/.cache on another disk) is fine
    ensure_inside(linked_cache, linked_cache / "snapshots" / "a")
    ensure_inside(Path(cache), cache / "snapshots")
