"""Start-up of `vibelocal --help` against a bare `import typer`, each in a fresh interpreter.

Runs alternate (typer, help, typer, help …) so load on a shared machine hits both alike; it reports the median
wall time and the median CPU time (user + system of the child, steadier when other processes compete).
It also lists which heavy modules the help path imported (pydantic, rich, textual, llama_cpp, huggingface_hub).
Target: help <= 2x typer. Run: python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pydantic", "rich", "textual", "llama_cpp", "huggingface_hub", "psutil")
PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['vibelocal', '--help']\n"
    "try:\n    runpy.run_module('vibelocal', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print(' '.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
)


def timed(args: list[str]) -> tuple[float, float, str]:
    """(wall s, child CPU s, stderr) of one fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    typer_t: list[tuple[float, float]] = []
    help_t: list[tuple[float, float]] = []
    heavy = ""
    timed(["-c", "import typer"])  # warm the file cache and .pyc files once
    timed(["-c", PROBE.format(heavy=HEAVY)])
    for _ in range(runs):
        typer_t.append(timed(["-c", "import typer"])[:2])
        wall, cpu, err = timed(["-c", PROBE.format(heavy=HEAVY)])
        help_t.append((wall, cpu))
        heavy = err.strip().splitlines()[-1] if err.strip() else ""
    for label, i in (("wall", 0), ("cpu", 1)):
        t = statistics.median(x[i] for x in typer_t)
        h = statistics.median(x[i] for x in help_t)
        print(
            f"{label:4}  import typer {t * 1000:6.0f} ms   vibelocal --help {h * 1000:6.0f} ms   ratio {h / t:.2f}x"
        )
    print(f"heavy modules on the help path: {heavy or 'none'}")


if __name__ == "__main__":
    main()
