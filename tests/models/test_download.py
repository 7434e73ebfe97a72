"""download.pull against the HF-compatible test server: clean pulls, every fault, disk space, offline, the cache."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from hubserver import REPO, HubServer, manifest, write_manifest

from vibelocal.errors import (
    ConfigError,
    DiskSpaceError,
    DownloadError,
    ExitCode,
    IntegrityError,
    ModelUnavailableError,
    UnknownModelError,
)
from vibelocal.models import download
from vibelocal.models.catalog import Catalog, parse_ref
from vibelocal.models.download import DownloadCancelled, DownloadOptions, HubUnreachable, pick_gguf
from vibelocal.models.store import Registry, hf_cache_dir
from vibelocal.paths import get_paths

MIRROR = "mirror-org/smol-GGUF"
GATED = "gated-org/smol-GGUF"
TOKEN = "hf_test_token_123"
FAST = DownloadOptions(stall_timeout_s=0.5, backoff_s=0.01, metadata_timeout_s=5)
SLACK = 512 * 1024  # "a little" re-fetched after a drop: less than one read buffer


@pytest.fixture(scope="module")
def hub_module(smollm2_path: Path):
    with HubServer(token=TOKEN) as hub:
        for repo in (REPO, MIRROR, GATED, "other-org/Smol-GGUF"):
            hub.add_file(repo, smollm2_path.name, smollm2_path)
        hub.set_gated(GATED)
        yield hub


@pytest.fixture
def hub(hub_module: HubServer, monkeypatch, smollm2_path: Path) -> HubServer:
    hub_module.reset_counters()
    hub_module._faults.clear()
    monkeypatch.setenv("HF_ENDPOINT", hub_module.endpoint)
    return hub_module


@pytest.fixture
def smol(smollm2_path: Path):
    class Smol:
        path = smollm2_path
        name = smollm2_path.name
        size = smollm2_path.stat().st_size
        sha256 = hashlib.sha256(smollm2_path.read_bytes()).hexdigest()

    return Smol


@pytest.fixture
def catalog(smol) -> Catalog:
    return write_manifest(manifest([REPO], smol.name, smol.size))


def do_pull(ref: str, catalog: Catalog, *, options: DownloadOptions = FAST, **kw):
    return download.pull(
        parse_ref(ref, catalog), quant=kw.pop("quant", None), paths=get_paths(), options=options, **kw
    )


def blobs_dir(repo: str = REPO) -> Path:
    return hf_cache_dir() / ("models--" + repo.replace("/", "--")) / "blobs"


def assert_nothing_left(repo: str = REPO) -> None:
    blobs = blobs_dir(repo)
    assert not blobs.exists() or [p.name for p in blobs.iterdir()] == []
    snaps = blobs.parent / "snapshots"
    assert not snaps.exists() or not any(p.is_file() for p in snaps.rglob("*"))
    assert Registry(get_paths()).list() == []


# --------------------------------------------------------------------------- clean pulls and the cache


def test_clean_pull_lands_in_the_hf_cache_verified_and_registered(hub, catalog, smol):
    seen = []
    model = do_pull("smol-test", catalog, progress=seen.append)
    assert model.verified and model.sha256 == smol.sha256 and model.size_bytes == smol.size
    assert (model.name, model.quant, model.repo, model.file) == ("smol-test", "Q4_1", REPO, smol.name)
    assert (
        model.path == hf_cache_dir() / f"models--test-org--smol-GGUF/snapshots/{model.revision}/{smol.name}"
    )
    assert model.path.is_symlink() and model.path.resolve().name == smol.sha256
    assert hashlib.sha256(model.path.read_bytes()).hexdigest() == smol.sha256
    assert hub.counters.body_bytes == smol.size
    assert Registry(get_paths()).list() == [model]
    phases = {p.phase for p in seen}
    assert phases == {"download", "verify"}
    last = [p for p in seen if p.phase == "download"][-1]
    assert last.downloaded_bytes == last.total_bytes == smol.size
    # the refs/main pointer lets huggingface_hub itself find the file offline
    from huggingface_hub import hf_hub_download

    found = hf_hub_download(REPO, smol.name, cache_dir=hf_cache_dir(), local_files_only=True)
    assert Path(found) == model.path


def test_second_pull_is_cached_with_no_body_bytes(hub, catalog, smol):
    do_pull("smol-test", catalog)
    hub.reset_counters()
    seen = []
    model = do_pull("smol-test:Q4_1", catalog, progress=seen.append)
    assert hub.counters.body_bytes == 0
    assert [p.phase for p in seen] == ["cached"]
    assert model.verified


def test_a_file_another_tool_downloaded_is_found_verified_and_registered(hub, catalog, smol):
    from huggingface_hub import hf_hub_download

    hf_hub_download(REPO, smol.name, cache_dir=hf_cache_dir(), endpoint=hub.endpoint)
    hub.reset_counters()
    seen = []
    model = do_pull("smol-test", catalog, progress=seen.append)
    assert hub.counters.body_bytes == 0
    assert "verify" in {p.phase for p in seen}
    assert model.verified and Registry(get_paths()).list() == [model]


def test_bit_rot_in_the_cache_is_caught_and_downloaded_again(hub, catalog, smol):
    model = do_pull("smol-test", catalog)
    blob = model.path.resolve()
    Registry(get_paths()).file.unlink()  # forget it, so the next pull re-verifies
    data = bytearray(blob.read_bytes())
    data[1234] ^= 0x01
    blob.write_bytes(bytes(data))
    hub.reset_counters()
    again = do_pull("smol-test", catalog)
    assert hub.counters.body_bytes == smol.size
    assert hashlib.sha256(again.path.read_bytes()).hexdigest() == smol.sha256


def test_hub_file_ref_and_unknown_repo_quant_ref(hub, catalog, smol):
    by_file = do_pull(f"{REPO}/{smol.name}", catalog)
    assert by_file.file == smol.name and by_file.quant == "Q4_1"
    listed = do_pull("other-org/Smol-GGUF:q4_1", catalog)  # not in any manifest: the repo's files are listed
    assert listed.repo == "other-org/Smol-GGUF" and listed.file == smol.name and listed.verified
    assert any("/api/models/other-org/Smol-GGUF/tree/main" in r[1] for r in hub.counters.requests)


def test_fallback_source_is_used_when_the_first_repo_fails(hub, smol):
    catalog = write_manifest(manifest(["gone-org/smol-GGUF", MIRROR], smol.name, smol.size))
    notes = []
    model = do_pull("smol-test", catalog, progress=lambda p: p.note and notes.append(p.note))
    assert model.repo == MIRROR
    assert any("trying mirror-org/smol-GGUF" in n for n in notes)


def test_cdn_redirect_keeps_the_token_off_the_cdn(smollm2_path, monkeypatch, catalog, smol):
    with HubServer(cdn=True, token=TOKEN) as cdn_hub:
        cdn_hub.add_file(REPO, smol.name, smollm2_path)
        monkeypatch.setenv("HF_ENDPOINT", cdn_hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        cdn_hub.fault("drop", after_bytes=10_000_000)
        model = do_pull("smol-test", catalog)
        assert model.verified and cdn_hub.counters.body_bytes <= smol.size + SLACK
        assert any(r[1].startswith("/cdn/") for r in cdn_hub.counters.requests)


# --------------------------------------------------------------------------- faults


def test_dropped_connection_resumes_fetching_only_the_missing_bytes(hub, catalog, smol):
    hub.fault("drop", after_bytes=30_000_000)
    hub.fault("drop", after_bytes=20_000_000)
    model = do_pull("smol-test", catalog)
    assert model.sha256 == smol.sha256
    gets = hub.counters.gets()
    assert len(gets) == 3 and gets[0][2] is None
    assert all(g[2] and g[2].startswith("bytes=") and int(g[2][6:-1]) > 0 for g in gets[1:])
    assert smol.size <= hub.counters.body_bytes <= smol.size + SLACK


def test_stall_is_treated_as_a_drop_and_resumed(hub, catalog, smol):
    hub.fault("stall", after_bytes=25_000_000, stall_s=20)
    notes = []
    model = do_pull("smol-test", catalog, progress=lambda p: p.note and notes.append(p))
    assert model.sha256 == smol.sha256
    stalled = [p for p in notes if "stalled" in p.note]
    assert len(stalled) == 1  # and the note keeps the counts, so a progress bar does not jump back to zero
    assert (stalled[0].downloaded_bytes, stalled[0].total_bytes) == (25_000_000, smol.size)
    assert hub.counters.body_bytes <= smol.size + SLACK
    assert len(hub.counters.gets()) == 2


def test_500_then_success_on_head_and_on_get(hub, catalog, smol):
    hub.fault("500", method="HEAD")
    hub.fault("500", method="GET")
    hub.fault("500", method="GET")
    model = do_pull("smol-test", catalog)
    assert model.verified
    assert hub.counters.body_bytes == smol.size
    assert len([r for r in hub.counters.requests if r[0] == "HEAD"]) == 2
    assert len(hub.counters.gets()) == 3


def test_persistent_5xx_gives_up_after_the_attempts_with_one_line(hub, catalog):
    for _ in range(10):
        hub.fault("500", method="ANY")
    with pytest.raises(HubUnreachable) as err:
        do_pull("smol-test", catalog, options=DownloadOptions(max_attempts=3, backoff_s=0.01))
    assert "failed after 3 attempts" in err.value.message and "\n" not in err.value.message
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert_nothing_left()


def test_a_corrupted_byte_is_caught_removed_and_never_registered(hub, catalog, smol):
    hub.fault("corrupt", offset=12_345_678)
    with pytest.raises(IntegrityError) as err:
        do_pull("smol-test", catalog)
    assert "failed its sha256 check and was removed" in err.value.message
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert_nothing_left()
    assert do_pull("smol-test", catalog).sha256 == smol.sha256  # the next pull starts clean


def test_manifest_pin_that_disagrees_with_the_hub_is_refused_before_downloading(hub, smol):
    catalog = write_manifest(manifest([REPO], smol.name, smol.size, sha256="0" * 64))
    with pytest.raises(IntegrityError):
        do_pull("smol-test", catalog)
    assert hub.counters.body_bytes == 0


def test_404_names_the_repo_and_the_file(hub, catalog):
    with pytest.raises(DownloadError) as err:
        do_pull(f"{REPO}/nope.Q4_1.gguf", catalog)
    assert err.value.message == f"nope.Q4_1.gguf not found in {REPO} (HTTP 404)"
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE


@pytest.mark.parametrize("kind", ["401", "403"])
def test_401_and_403_explain_hf_token(hub, catalog, kind):
    hub.fault(kind, method="HEAD")
    with pytest.raises(DownloadError) as err:
        do_pull("smol-test", catalog)
    assert f"HTTP {kind}" in err.value.message and "HF_TOKEN" in (err.value.hint or "")


def test_gated_repo_needs_and_accepts_hf_token(hub, smol, monkeypatch):
    catalog = write_manifest(manifest([GATED], smol.name, smol.size))
    with pytest.raises(DownloadError) as err:
        do_pull("smol-test", catalog)
    assert "gated" in err.value.message and "HF_TOKEN" in (err.value.hint or "")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert do_pull("smol-test", catalog).repo == GATED


def test_unreachable_hub_is_a_clear_error(monkeypatch, catalog):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(HubUnreachable) as err:
        do_pull("smol-test", catalog)
    assert "127.0.0.1:9" in err.value.message and "offline" in err.value.message


# --------------------------------------------------------------------------- interruption


def test_cancel_keeps_the_partial_file_and_the_next_pull_resumes(hub, catalog, smol):
    cancel = threading.Event()
    # the first answer drops at 45 MB, so the cancel below always lands before the file is complete (progress
    # is reported at most every 0.1 s: on loopback the whole file can arrive between two reports)
    hub.fault("drop", after_bytes=45_000_000)

    def stop_midway(p):
        if p.downloaded_bytes > 40_000_000:
            cancel.set()

    with pytest.raises(DownloadCancelled) as err:
        do_pull("smol-test", catalog, progress=stop_midway, cancel=cancel)
    assert err.value.exit_code == ExitCode.INTERRUPTED
    partial = list(blobs_dir().glob("*.incomplete"))
    assert len(partial) == 1 and partial[0].stat().st_size > 40_000_000
    kept = partial[0].stat().st_size
    assert Registry(get_paths()).list() == []
    hub.reset_counters()
    seen = []
    model = do_pull("smol-test", catalog, progress=seen.append)
    assert hub.counters.body_bytes == smol.size - kept
    assert hub.counters.gets()[0][2] == f"bytes={kept}-"
    assert seen[0].resumed_from == kept and "resuming" in (seen[0].note or "")
    assert model.sha256 == smol.sha256


def test_a_partial_file_left_by_a_crash_is_resumed(hub, catalog, smol):
    blobs_dir().mkdir(parents=True)
    (blobs_dir() / f"{smol.sha256}.incomplete").write_bytes(smol.path.read_bytes()[:33_000_000])
    model = do_pull("smol-test", catalog)
    assert hub.counters.body_bytes == smol.size - 33_000_000
    assert model.sha256 == smol.sha256


# --------------------------------------------------------------------------- disk space and offline


def test_not_enough_disk_space_refuses_with_both_numbers_and_writes_nothing(hub, catalog, smol):
    opts = DownloadOptions(free_bytes=lambda _p: 50_000_000, disk_margin_bytes=10_000_000)
    with pytest.raises(DiskSpaceError) as err:
        do_pull("smol-test", catalog, options=opts)
    msg = err.value.message
    assert "108.36 MB" in msg and "50.00 MB free" in msg, msg
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert not hf_cache_dir().exists()
    assert hub.counters.body_bytes == 0


@pytest.mark.parametrize("how", ["env", "setting"])
def test_offline_without_the_file_is_a_clear_error_and_touches_no_network(hub, catalog, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        do_pull("smol-test", catalog, offline=how == "setting")
    assert err.value.message.startswith("offline, and SmolLM2-135M-Instruct")
    assert hub.counters.requests == []


@pytest.mark.parametrize("how", ["env", "setting"])
def test_offline_with_the_file_cached_uses_it_without_network(hub, catalog, smol, monkeypatch, how):
    first = do_pull("smol-test", catalog)
    hub.reset_counters()
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    Registry(get_paths()).file.unlink()  # not even registered: offline still verifies from the cache
    model = do_pull("smol-test", catalog, offline=how == "setting")
    assert model.path == first.path and model.verified
    assert hub.counters.requests == []


def test_unreachable_hub_with_the_file_cached_falls_back_to_the_cache(hub, catalog, monkeypatch):
    first = do_pull("smol-test", catalog)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert do_pull("smol-test", catalog).path == first.path


def test_unknown_quant_of_an_alias_lists_the_available_ones(hub, catalog):
    with pytest.raises(UnknownModelError) as err:
        download.pull(parse_ref("smol-test", catalog), quant="Q8_0", paths=get_paths())
    assert "available: Q4_1" in err.value.message


# --------------------------------------------------------------------------- choosing a file in a repo


@pytest.mark.parametrize(
    ("files", "quant", "expected"),
    [
        (["a.Q4_K_M.gguf", "a.Q8_0.gguf", "README.md"], None, "a.Q4_K_M.gguf"),
        (["a.Q4_K_M.gguf", "a.Q8_0.gguf"], "q8_0", "a.Q8_0.gguf"),
        (["a-Q4_K_S.gguf", "a-Q4_K_M.gguf"], "Q4_K_M", "a-Q4_K_M.gguf"),
        (["only.gguf"], None, "only.gguf"),
        (["x.Q4_K_M-00001-of-00002.gguf", "x.Q4_K_M.gguf"], "Q4_K_M", "x.Q4_K_M.gguf"),
    ],
)
def test_pick_gguf(files, quant, expected):
    assert pick_gguf("o/r", files, quant) == expected


@pytest.mark.parametrize(
    ("files", "quant", "fragment"),
    [
        (["a.Q4_K_M.gguf", "a.Q8_0.gguf"], "Q2_K", "no file matches 'Q2_K'"),
        (["a.Q4_K.gguf", "b.Q4_K.gguf"], "Q4_K", "several files match"),
        (["README.md"], None, "no single-file .gguf"),
    ],
)
def test_pick_gguf_refuses_ambiguity(files, quant, fragment):
    with pytest.raises(ModelUnavailableError) as err:
        pick_gguf("o/r", files, quant)
    assert fragment in err.value.message


# --------------------------------------------------------------------------- a hostile server


SMALL = "tiny.Q4_1.gguf"


@pytest.fixture
def small_file(tmp_path_factory) -> Path:
    """A 300 kB file: the hostile cases need bytes, not a model (nothing here loads it)."""
    path = tmp_path_factory.mktemp("served") / SMALL
    path.write_bytes(os.urandom(300_000))
    return path


@pytest.fixture
def evil(small_file, monkeypatch):
    """A server of its own per test (hostility is for good), already in HF_ENDPOINT."""
    with HubServer() as server:
        server.add_file("o/r", SMALL, small_file)
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under `root` with its bytes (or link target): what "nothing was touched" compares."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = os.readlink(p) if p.is_symlink() else (p.read_bytes() if p.is_file() else "dir")
    return out


def victim(tmp_path: Path) -> Path:
    """A folder outside the cache holding a user's file of the served name (the issue's deleted file)."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / SMALL).write_bytes(b"the user's own file, not to be touched")
    (folder / "x").write_bytes(b"another file of the user's")
    return folder


def test_a_commit_id_that_is_a_path_is_refused_and_nothing_outside_the_cache_is_touched(evil, tmp_path):
    outside = victim(tmp_path)
    snapshots = hf_cache_dir() / "models--o--r" / "snapshots"
    evil.hostile("o/r", SMALL, commit=os.path.relpath(outside, snapshots))
    before = tree(tmp_path)
    with pytest.raises(download.UnsafePathError) as err:
        download.pull(parse_ref(f"o/r/{SMALL}"), quant=None, paths=get_paths(), options=FAST)
    assert "the server's commit id '../" in err.value.message and "not 40 hex digits" in err.value.message
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE and "\n" not in err.value.message
    assert tree(tmp_path) == before
    assert evil.counters.body_bytes == 0 and Registry(get_paths()).list() == []


def test_an_etag_that_is_a_path_never_names_a_blob_even_with_a_pinned_sha256(evil, small_file, tmp_path):
    outside = victim(tmp_path)
    blobs = hf_cache_dir() / "models--o--r" / "blobs"
    evil.hostile("o/r", SMALL, etag=os.path.relpath(outside / "x", blobs))
    sha = hashlib.sha256(small_file.read_bytes()).hexdigest()
    catalog = write_manifest(manifest(["o/r"], SMALL, small_file.stat().st_size, sha256=sha))
    before = tree(tmp_path)
    model = do_pull("smol-test", catalog)  # the pin names the blob; the hostile ETag is never a path
    assert model.path.resolve() == blobs / sha and model.sha256 == sha
    assert tree(tmp_path) == before
    assert not (hf_cache_dir() / ".locks" / "models--o--r" / "x.lock").exists()
    assert {p.name for p in (hf_cache_dir() / ".locks" / "models--o--r").iterdir()} == {f"{sha}.lock"}


@pytest.mark.parametrize(
    ("etag", "pin"),
    [("../../../x", None), ("a" * 63 + "/", None), ("../" + "a" * 61, "not-a-sha256")],
)
def test_an_etag_that_is_no_digest_and_no_usable_pin_is_refused(evil, small_file, tmp_path, etag, pin):
    outside = victim(tmp_path)
    evil.hostile("o/r", SMALL, etag=etag)
    catalog = write_manifest(manifest(["o/r"], SMALL, small_file.stat().st_size, sha256=pin))
    before = tree(tmp_path)
    with pytest.raises(DownloadError) as err:
        do_pull("smol-test", catalog)
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE and "\n" not in err.value.message
    assert tree(tmp_path) == before and (outside / SMALL).exists()
    assert evil.counters.body_bytes == 0


def test_a_listed_file_name_that_is_a_path_is_never_picked(evil, small_file, tmp_path):
    evil.add_file("o/r", "../../evil.Q4_K_M.gguf", small_file)
    model = download.pull(parse_ref("o/r:Q4_1"), quant=None, paths=get_paths(), options=FAST)
    assert model.file == SMALL
    with pytest.raises(
        UnknownModelError
    ):  # the only Q4_K_M name is the hostile one: skipped, so none matches
        download.pull(parse_ref("o/r:Q4_K_M"), quant=None, paths=get_paths(), options=FAST)


def test_a_snapshot_folder_linked_outside_the_cache_is_refused_before_linking(evil, small_file, tmp_path):
    outside = victim(tmp_path)
    commit = evil.repos["o/r"].commit
    snapshots = hf_cache_dir() / "models--o--r" / "snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / commit).symlink_to(outside)  # planted by someone: the link's folder resolves outside
    before = tree(tmp_path)
    with pytest.raises(download.UnsafePathError) as err:
        download.pull(parse_ref(f"o/r/{SMALL}"), quant=None, paths=get_paths(), options=FAST)
    assert "outside the hub cache" in err.value.message
    assert tree(tmp_path) == before and evil.counters.body_bytes == 0


@pytest.mark.parametrize("how", ["announce_size", "empty_206"])
def test_a_server_that_announces_more_than_it_sends_ends_in_bounded_attempts(evil, small_file, how):
    blobs = hf_cache_dir() / "models--o--r" / "blobs"
    if how == "announce_size":
        evil.hostile("o/r", SMALL, announce_size=small_file.stat().st_size + 100_000)
    else:  # a partial is there, and every ranged GET gets a well-formed, empty 206
        evil.hostile("o/r", SMALL, empty_206=True)
        blobs.mkdir(parents=True)
        sha = hashlib.sha256(small_file.read_bytes()).hexdigest()
        (blobs / f"{sha}.incomplete").write_bytes(small_file.read_bytes()[:1000])
    with pytest.raises(HubUnreachable) as err:
        download.pull(
            parse_ref(f"o/r/{SMALL}"),
            quant=None,
            paths=get_paths(),
            options=DownloadOptions(max_attempts=4, backoff_s=0.01, stall_timeout_s=2),
        )
    assert "failed after 4 attempts" in err.value.message and "\n" not in err.value.message
    assert len(evil.counters.gets()) <= 5  # the first GET plus at most one per failed attempt
    assert Registry(get_paths()).list() == []


def test_a_redirect_loop_is_one_error(evil):
    evil.hostile("o/r", SMALL, redirect_loop=True)
    with pytest.raises(DownloadError) as err:
        download.pull(parse_ref(f"o/r/{SMALL}"), quant=None, paths=get_paths(), options=FAST)
    assert "redirected the request for o/r/tiny.Q4_1.gguf in a loop" in err.value.message
    assert len(evil.counters.requests) <= 25


# --------------------------------------------------------------------------- parallel pulls


def test_two_parallel_pulls_into_one_home_lose_no_entry_and_fetch_each_file_once(tmp_path, monkeypatch):
    names = [f"p{i}.Q4_1.gguf" for i in range(2)]
    with HubServer() as server:
        for name in names:
            path = tmp_path / name
            path.write_bytes(os.urandom(64_000))
            server.add_file("o/r", name, path)
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        for rnd in range(20):
            # two pulls of different files (the registry race) and two of one file (the blob race)
            refs = [f"o/r/{names[0]}", f"o/r/{names[1]}"] if rnd % 2 else [f"o/r/{names[rnd % 4 // 2]}"] * 2
            server.reset_counters()
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def one(ref: str, barrier=barrier, errors=errors) -> None:
                barrier.wait()
                try:
                    download.pull(parse_ref(ref), quant=None, paths=get_paths(), options=FAST)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(r,)) for r in refs]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert errors == []
            listed = {m.file for m in Registry(get_paths()).list()}
            assert set(r.rsplit("/", 1)[1] for r in refs) <= listed, f"round {rnd}: {listed}"
            fresh = len(set(refs))
            assert server.counters.body_bytes <= fresh * 64_000, f"round {rnd}"
            Registry(get_paths()).file.unlink()
            for p in hf_cache_dir().rglob("*"):
                if p.is_file() or p.is_symlink():
                    p.unlink()


# --------------------------------------------------------------------------- bad input before any byte


@pytest.mark.parametrize(
    "value", ["abc", "", "1.5", "0", "-3", "9" * 5000], ids=["abc", "empty", "1.5", "0", "-3", "5000-digits"]
)
def test_a_bad_hub_timeout_is_a_config_error_before_huggingface_hub_sees_it(hub, catalog, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(ConfigError) as err:
        do_pull("smol-test", catalog)
    assert err.value.message.startswith("HF_HUB_DOWNLOAD_TIMEOUT must be a whole number of seconds")
    assert err.value.exit_code == ExitCode.USAGE and len(err.value.message) < 200
    assert hub.counters.requests == []


@pytest.mark.parametrize(
    "ref",
    [
        "owner/../x.gguf",
        "repo/../../x.gguf",
        "o/r/a//b.gguf",
        "o/" + "r" * 100 + ":Q4_1",
        "o/r/" + "x" * 300 + ".gguf",
    ],
)
def test_a_ref_the_hub_library_rejects_is_one_line_before_any_request(hub, ref):
    with pytest.raises(UnknownModelError) as err:
        download.pull(parse_ref(ref), quant=None, paths=get_paths(), options=FAST)
    assert "is not a valid hub" in err.value.message and "\n" not in err.value.message
    assert err.value.exit_code == ExitCode.MODEL_UNAVAILABLE
    assert hub.counters.requests == []


def test_an_unwritable_data_folder_is_refused_before_any_request(hub, catalog):
    data = get_paths().registry_file.parent
    data.parent.mkdir(parents=True, exist_ok=True)
    if data.exists():
        data.rmdir()
    data.write_text("a file where the data folder should be")  # unwritable for root too
    with pytest.raises(download.CacheWriteError) as err:
        do_pull("smol-test", catalog)
    assert "the model registry folder" in err.value.message and "is not writable" in err.value.message
    assert hub.counters.requests == []


def test_an_unwritable_cache_is_refused_before_any_body_byte(hub, catalog):
    hf_cache_dir().parent.mkdir(parents=True, exist_ok=True)
    hf_cache_dir().write_text("a file where the hub cache should be")
    with pytest.raises(download.CacheWriteError) as err:
        do_pull("smol-test", catalog)
    assert "the Hugging Face cache" in err.value.message and "HF_HOME" in (err.value.hint or "")
    assert hub.counters.body_bytes == 0 and hub.counters.gets() == []
