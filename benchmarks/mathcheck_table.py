"""Score plain math-verify and vibelocal.answers.mathcheck on the answer tables (both directions), and time them.

False accepts (a wrong answer called equivalent: the tutor's worst failure) and false rejects are counted apart.
The tables are tests/fixtures/equivalence.tsv and tests/fixtures/answer_classes.tsv (the classes of issue 12).

Run: python benchmarks/mathcheck_table.py [TABLE ...]
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLES = [ROOT / "tests" / "fixtures" / "equivalence.tsv", ROOT / "tests" / "fixtures" / "answer_classes.tsv"]


def load(path: Path) -> list[tuple[str, str, bool]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            answer, key, expected, *_ = line.split("\t")
            rows.append((answer, key, expected == "1"))
    return rows


def score(name: str, rows: list[tuple[str, str, bool]], judge) -> None:
    right = total = false_accepts = false_rejects = 0
    start = time.perf_counter()
    misses = []
    for answer, key, expected in rows:
        for a, k in ((answer, key), (key, answer)):
            total += 1
            got = judge(a, k)
            if got == expected:
                right += 1
                continue
            false_accepts += got and not expected
            false_rejects += expected and not got
            misses.append(f"{'false accept' if got else 'false reject'}: {a!r} vs {k!r}")
    elapsed = time.perf_counter() - start
    print(
        f"{name:<46} {right:>4}/{total} = {100 * right / total:5.1f}%   false accepts {false_accepts:>3}   "
        f"false rejects {false_rejects:>3}   {1000 * elapsed / total:6.1f} ms/check"
    )
    for miss in misses[:8]:
        print(f"    {miss}")
    if len(misses) > 8:
        print(f"    ... and {len(misses) - 8} more")


def main() -> None:
    logging.disable(logging.WARNING)
    from math_verify import parse, verify

    from vibelocal.answers.deadline import HELPER
    from vibelocal.answers.mathcheck import check

    tables = [Path(arg) for arg in sys.argv[1:]] or TABLES
    rows = [row for table in tables for row in load(table)]
    print(f"{len(rows)} pairs from {', '.join(t.name for t in tables)}, each checked both ways\n")
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
