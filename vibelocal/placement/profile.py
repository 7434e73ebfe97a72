"""Hardware profile files (`vibelocal doctor --hardware FILE`): a described machine, checked like a probed one."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from vibelocal.errors import UsageError
from vibelocal.files import loads_bounded, read_capped
from vibelocal.types import HardwareProfile

_PROFILE_EXTRA_KEYS = {"description", "comment"}
MAX_PROFILE_BYTES = 1_000_000
"""A profile is a few kB; anything larger (or a FIFO, /dev/zero) is refused before it is read."""


def load_profile(path: Path) -> HardwareProfile:
    """Read a `doctor --hardware` profile (JSON, sizes in bytes). Any problem is a UsageError (exit 2)."""
    path = Path(path)
    raw = read_capped(path, "hardware profile", MAX_PROFILE_BYTES, UsageError)
    try:
        data = loads_bounded(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"hardware profile {path} is not UTF-8 text (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"hardware profile {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from None
    except ValueError as exc:  # loads_bounded's limits: nesting depth, integer digits
        raise UsageError(f"hardware profile {path} is refused: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"hardware profile {path} must be a JSON object")
    unknown = sorted(set(data) - set(HardwareProfile.model_fields) - _PROFILE_EXTRA_KEYS)
    if unknown:
        raise UsageError(f"hardware profile {path}: unknown key {unknown[0]!r}")
    data = {k: v for k, v in data.items() if k not in _PROFILE_EXTRA_KEYS}
    backends = data.get("build_backends") or ["cpu"]
    gpus = data.get("gpus") or []
    if isinstance(backends, list) and isinstance(gpus, list):
        for gpu in gpus:  # a GPU is usable exactly when the described build has its backend, unless stated
            if isinstance(gpu, dict) and "usable_by_build" not in gpu:
                gpu["usable_by_build"] = gpu.get("backend") in backends
    data["source"] = "profile"
    try:
        profile = HardwareProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "?"
        raise UsageError(f"hardware profile {path}: {where}: {err.get('msg', 'invalid value')}") from None
    _check_profile(profile, path)
    return profile


def _check_profile(p: HardwareProfile, path: Path) -> None:
    problems = []
    if p.cpu_cores_physical < 1 or p.cpu_cores_logical < p.cpu_cores_physical:
        problems.append("cpu_cores_physical must be >= 1 and <= cpu_cores_logical")
    if p.ram_total_bytes <= 0 or not 0 <= p.ram_available_bytes <= p.ram_total_bytes:
        problems.append("ram_available_bytes must be between 0 and ram_total_bytes (> 0)")
    for gpu in p.gpus:
        if gpu.memory_total_bytes < 0 or not 0 <= gpu.memory_free_bytes <= gpu.memory_total_bytes:
            problems.append(f"gpu {gpu.name!r}: memory_free_bytes must be between 0 and memory_total_bytes")
    if problems:
        raise UsageError(f"hardware profile {path}: {problems[0]}")
