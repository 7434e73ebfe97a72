"""download.pull against the HF-compatible test server: clean pulls, every fault, disk space, offline, the cache."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from hubserver import REPO, HubServer, manifest, write_manifest

from vibelocal.errors import (
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

    def stop_midway(p):
        if p.phase == "download" and p.downloaded_bytes > 40_000_000:
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
