"""Speeds measured on this machine by `vibelocal bench`, kept so the planner can use them instead of estimates.

One JSON file (`bench.json` in the data folder) maps a key — the model file (sha256, else path and size) and
the settings that change its speed (threads, GPU layers, backend) — to the latest result. The file is read
defensively: anything malformed is ignored (the planner falls back to its estimate), never trusted as a size.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibelocal.paths import Paths
from vibelocal.types import InstalledModel

MAX_FILE_BYTES = 1_000_000
MAX_TOK_S = 1_000_000.0


@dataclass(frozen=True)
class MeasuredSpeed:
    """The decode rate at each measured depth, the prompt rate, and when it was measured."""

    decode_tok_s: dict[int, float]
    prefill_tok_s: float | None
    measured_at: float

    def decode_at(self, depth: int) -> float | None:
        """The decode rate at `depth` tokens of cache, interpolated linearly between measured depths."""
        if not self.decode_tok_s:
            return None
        points = sorted(self.decode_tok_s.items())
        if depth <= points[0][0]:
            return points[0][1]
        for (d0, r0), (d1, r1) in zip(points, points[1:], strict=False):
            if depth <= d1:
                return r0 + (r1 - r0) * (depth - d0) / (d1 - d0)
        return points[-1][1]


def bench_file(paths: Paths) -> Path:
    return paths.data_dir / "bench.json"


def speed_key(model: InstalledModel, *, n_threads: int, n_gpu_layers: int, backend: str) -> str:
    try:
        size = model.path.stat().st_size
    except OSError:
        size = 0
    ident = model.sha256 or f"{model.path.resolve()}:{size}"
    return f"{ident}|threads={n_threads}|gpu_layers={n_gpu_layers}|{backend}"


def _read(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _rate(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and 0 < value <= MAX_TOK_S else None


def save_result(paths: Paths, key: str, result: dict[str, Any]) -> Path:
    """Store one `vibelocal bench` result (its --json object) under `key`; returns the file."""
    path = bench_file(paths)
    data = _read(path)
    data[key] = {**result, "measured_at": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_speed(paths: Paths, key: str) -> MeasuredSpeed | None:
    """The stored speed for `key`, or None (none stored, or the entry is malformed)."""
    entry = _read(bench_file(paths)).get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("results"), list):
        return None
    decode: dict[int, float] = {}
    prefill = None
    for row in entry["results"][:64]:
        if not isinstance(row, dict) or row.get("n_seq", 1) != 1:  # batched rows are not one turn's rate
            continue
        rate, depth = _rate(row.get("avg_ts")), row.get("n_depth")
        if (
            rate is None
            or isinstance(depth, bool)
            or not isinstance(depth, int)
            or not 0 <= depth <= 10_000_000
        ):
            continue
        if row.get("n_gen") and not row.get("n_prompt"):
            decode[depth] = rate
        elif row.get("n_prompt") and not row.get("n_gen") and depth == 0:
            prefill = rate
    when = entry.get("measured_at")
    when = float(when) if isinstance(when, (int, float)) and not isinstance(when, bool) else 0.0
    return MeasuredSpeed(decode, prefill, when) if decode else None


def memory_bandwidth_gbs(size_mb: int = 256, repetitions: int = 5) -> float:
    """Measured copy bandwidth in GB/s (bytes read plus bytes written, best of a few copies)."""
    import numpy as np

    a = np.ones(size_mb * 1_000_000 // 8, dtype=np.float64)
    b = np.empty_like(a)
    best = math.inf
    for _ in range(repetitions):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9
