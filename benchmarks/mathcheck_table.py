"""Score plain math-verify and vibelocal.answers.mathcheck on the equivalence table (both directions), and time them.

Run: python benchmarks/mathcheck_table.py [TABLE]
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tests" / "fixtures" / "equivalence.tsv"


def load(path: Path) -> list[tuple[str, str, bool]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            answer, key, expected, *_ = line.split("\t")
            rows.append((answer, key, expected == "1"))
    return rows


def score(name: str, rows: list[tuple[str, str, bool]], judge) -> None:
    right = total = 0
    start = time.perf_counter()
    misses = []
    for answer, key, expected in rows:
        for a, k in ((answer, key), (key, answer)):
            total += 1
            if judge(a, k) == expected:
                right += 1
            else:
                misses.append(f"{a!r} vs {k!r}")
    elapsed = time.perf_counter() - start
    print(
        f"{name:<46} {right:>4}/{total} = {100 * right / total:5.1f}%   {1000 * elapsed / total:6.1f} ms/check"
    )
    for miss in misses[:8]:
        print(f"    wrong: {miss}")
    if len(misses) > 8:
        print(f"    ... and {len(misses) - 8} more")


def main() -> None:
    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    from vibelocal.answers.deadline import HELPER
    from vibelocal.answers.mathcheck import check

    rows = load(Path(sys.argv[1]) if len(sys.argv) > 1 else TABLE)
    print(f"{len(rows)} pairs, each checked both ways\n")
    score("math-verify, verify(parse(key), parse(answer))", rows, lambda a, k: verify(parse(k), parse(a)))
    score(
        "math-verify, inputs wrapped in $...$",
        rows,
        lambda a, k: verify(parse(f"${k}$"), parse(f"${a}$")),
    )
    score(
        "vibelocal.answers.mathcheck, no time bound",
        rows,
        lambda a, k: check(a, k, timeout_s=None).equivalent,
    )
    score("vibelocal.answers.mathcheck, main thread (SIGALRM)", rows, lambda a, k: check(a, k).equivalent)

    out: dict[str, float] = {}

    def off_main() -> None:
        t = time.perf_counter()
        check("1", "1")
        out["start"] = time.perf_counter() - t
        score(
            "vibelocal.answers.mathcheck, worker thread (helper)", rows, lambda a, k: check(a, k).equivalent
        )

    thread = threading.Thread(target=off_main)
    thread.start()
    thread.join()
    HELPER.close()
    print(f"\nhelper process start (interpreter + sympy import): {out['start']:.2f} s")


if __name__ == "__main__":
    main()
