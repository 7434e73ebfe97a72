"""`vibelocal doctor`: the --json schema, every hardware profile, a real model file, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hubserver import REPO, HubServer, manifest, write_manifest
from testpaths import FIXTURES
from typer.testing import CliRunner

from vibelocal.cli import app
from vibelocal.models import download
from vibelocal.models.catalog import parse_ref
from vibelocal.models.download import DownloadOptions
from vibelocal.paths import get_paths

PROFILES = FIXTURES / "profiles"
PLAN_KEYS = {
    "fits",
    "quant",
    "backend",
    "n_gpu_layers",
    "n_layers",
    "n_ctx",
    "n_threads",
    "memory",
    "expected_decode_tok_s",
}


def doctor(*args: str):
    result = CliRunner().invoke(app, ["doctor", *args])
    assert result.exit_code == 0, result.output
    return result


def test_json_schema_on_this_machine():
    data = json.loads(doctor("--json").stdout)
    assert {"schema", "hardware", "model", "plan", "quants", "reasons", "warnings"} <= set(data)
    assert data["schema"] == 1
    assert data["hardware"]["source"] == "probe"
    usable = [g["backend"] for g in data["hardware"]["gpus"] if g["usable_by_build"]]
    assert set(usable) <= set(data["hardware"]["build_backends"])
    plan = data["plan"]
    assert set(plan) >= PLAN_KEYS
    assert {"host_bytes", "device_bytes"} <= set(plan["memory"])
    assert plan["fits"] is True and plan["memory"]["host_bytes"] > 1024**3
    assert plan["backend"] in [*usable, "cpu"]  # a GPU only when the build drives one (a CUDA or Metal build)
    on_gpu = plan["backend"] != "cpu"
    assert (plan["n_gpu_layers"] > 0) is on_gpu and (plan["memory"]["device_bytes"] > 0) is on_gpu
    assert data["reasons"] == plan["reasons"] and data["reasons"]
    assert {q["quant"] for q in data["quants"]} >= {"Q4_K_M", "Q8_0"}
    assert data["model"]["name"] == "vibethinker-3b" and data["model"]["installed"] is False


@pytest.mark.parametrize("profile", sorted(PROFILES.glob("*.json")), ids=lambda p: p.stem)
def test_every_profile(profile):
    data = json.loads(doctor("--json", "--hardware", str(profile)).stdout)
    assert data["hardware"]["source"] == "profile"
    plan = data["plan"]
    assert plan["fits"] is (profile.stem != "nothing_fits")
    text = doctor("--hardware", str(profile)).stdout
    assert "Hardware (from the profile file)" in text and "Why" in text and "Quants" in text
    assert plan["quant"] in text


def test_human_output_shows_reinstall_advice_for_an_unusable_gpu():
    out = doctor("--hardware", str(PROFILES / "nvidia_cpu_build.json")).stdout
    assert "NOT usable by this build" in out
    assert "vibelocal doctor --reinstall-backend cuda" in out
    data = json.loads(doctor("--json", "--hardware", str(PROFILES / "nvidia_cpu_build.json")).stdout)
    assert data["reinstall"]["cuda"][0] == "vibelocal doctor --reinstall-backend cuda"


def test_model_file_and_ctx(smollm2_path):
    data = json.loads(doctor("--json", "--model", str(smollm2_path), "--ctx", "2048").stdout)
    assert data["model"]["planned_from"] == "file"
    assert (
        data["plan"]["quant"] == "Q4_1" and data["plan"]["n_ctx"] == 2048 and data["plan"]["n_layers"] == 30
    )
    assert data["quants"] == []


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibelocal", "doctor", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
    )


def test_bad_profile_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "laptop.json"
    bad.write_text('{"os": "Linux"', encoding="utf-8")
    out = _run("--hardware", str(bad))
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hardware profile") and "not valid JSON" in lines[0]


def test_corrupt_model_file_is_exit_5(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"NOTGGUF" * 10)
    out = _run("--model", str(bad))
    assert out.returncode == 5
    assert len(out.stderr.strip().splitlines()) == 1 and "not a GGUF" in out.stderr


# --------------------------------------------------------------------------- the disk that is checked


@pytest.mark.parametrize(
    ("variable", "below"), [("HF_HUB_CACHE", ""), ("HUGGINGFACE_HUB_CACHE", ""), ("HF_HOME", "hub")]
)
def test_doctor_checks_the_disk_of_the_folder_downloads_use(
    monkeypatch, tmp_path, smollm2_path, variable, below
):
    import psutil

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "elsewhere"))
    folder = tmp_path / "elsewhere" / below
    folder.mkdir(parents=True)  # so each side measures the folder itself, not an existing parent
    measured: dict[str, list[str]] = {"doctor": [], "pull": []}
    real_disk_usage = psutil.disk_usage

    def doctor_disk_usage(path: str):
        measured["doctor"].append(path)
        return real_disk_usage(path)

    monkeypatch.setattr(psutil, "disk_usage", doctor_disk_usage)

    def pull_free_bytes(path):
        measured["pull"].append(str(path))
        return 1 << 50

    # the manifest first: the catalog caches each folder's manifests for the life of the process
    catalog = write_manifest(manifest([REPO], smollm2_path.name, smollm2_path.stat().st_size))
    report = json.loads(doctor("--json").stdout)
    assert report["hardware"]["disk_free_bytes"] and report["models_dir"] == str(folder)
    with HubServer() as hub:
        hub.add_file(REPO, smollm2_path.name, smollm2_path)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        options = DownloadOptions(free_bytes=pull_free_bytes, metadata_timeout_s=5)
        model = download.pull(parse_ref("smol-test", catalog), quant=None, paths=get_paths(), options=options)
    assert measured == {"doctor": [str(folder)], "pull": [str(folder)]}
    assert model.path.is_relative_to(folder)


def test_parallel_plans_k_sequences_and_says_when_fewer_fit():
    big = json.loads(
        doctor("--json", "--hardware", str(PROFILES / "rtx4060_32gb.json"), "--parallel", "4").stdout
    )
    assert big["plan"]["n_parallel"] == 4
    assert any(r.startswith("4 sequences side by side") for r in big["reasons"])
    text = doctor("--hardware", str(PROFILES / "rtx4060_32gb.json"), "--parallel", "4").stdout
    assert "x 4 sequences side by side" in text
    small = json.loads(
        doctor("--json", "--hardware", str(PROFILES / "netbook_4gb.json"), "--parallel", "4").stdout
    )
    assert small["plan"]["n_parallel"] == 1
    assert any("not 4" in r for r in small["reasons"])
    assert any(w.startswith("only 1 of 4 sequences fit side by side") for w in small["warnings"])
