"""Sizes for people: one formatter, decimal units (as the hub's file pages and download sizes use)."""

from __future__ import annotations


def format_bytes(n: float | None, *, digits: int = 1) -> str:
    """`1.9 GB`, `310 MB`..., `512 B`; `?` when unknown. `digits` is the number of decimals above bytes."""
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{digits}f} {unit}"
        n /= 1000
    return f"{n:.{digits}f} TB"
