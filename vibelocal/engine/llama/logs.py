"""llama.cpp's own logging, captured into a ring buffer (never printed); its last error line explains failures."""

from __future__ import annotations

import ctypes
import threading
from collections import deque
from typing import Any

_LOG: deque[tuple[int, str]] = deque(maxlen=400)
_LOG_WARN, _LOG_ERROR = 3, 4  # enum ggml_log_level
_log_total = 0  # lines ever logged (the ring buffer forgets)
_log_lock = threading.Lock()
_log_callback: Any = None  # the ctypes callback must stay alive as long as llama.cpp may call it


def capture_logs() -> None:
    """Route llama.cpp/ggml logging into `_LOG` (once per process)."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp
    import llama_cpp.llama  # noqa: F401  (importing it installs the binding's own printer; replace it after)

    partial: list[str] = []

    def on_log(level: int, text: bytes, _user: Any) -> None:
        piece = text.decode("utf-8", "replace") if text else ""
        partial.append(piece)
        if piece.endswith("\n"):
            line = "".join(partial).rstrip()
            partial.clear()
            if line:
                global _log_total
                with _log_lock:
                    _LOG.append((level, line))
                    _log_total += 1

    _log_callback = llama_cpp.llama_log_callback(on_log)
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def llama_log_lines() -> list[str]:
    """The captured llama.cpp log lines (most recent last), for `doctor` and bug reports."""
    with _log_lock:
        return [line for _, line in _LOG]


def last_error_line(since: int) -> str | None:
    """The first error llama.cpp logged since line number `since` (it explains; later ones only repeat),
    else the last warning."""
    with _log_lock:
        new = min(_log_total - since, len(_LOG))
        lines = list(_LOG)[len(_LOG) - new :] if new > 0 else []
    errors = [line for level, line in lines if level == _LOG_ERROR]
    if errors:
        return errors[0].strip()
    warnings = [line for level, line in lines if level == _LOG_WARN]
    return warnings[-1].strip() if warnings else None


def log_mark() -> int:
    """A position in the log: pass it to last_error_line() to see only what was logged after it."""
    return _log_total
