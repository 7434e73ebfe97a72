"""One exception hierarchy; each error carries a one-line message, an optional hint and an exit code."""

from __future__ import annotations


class ExitCode:
    """Documented process exit codes (README, 'Exit codes')."""

    OK = 0
    ERROR = 1  # anything not covered below
    USAGE = 2  # bad flags, bad config, malformed budget
    BAD_INPUT = 3  # the problem file: missing, empty, binary, too long
    MODEL_UNAVAILABLE = 4  # not installed, offline, download failed, unknown reference, disk full
    MODEL_LOAD = 5  # corrupt or unsupported GGUF
    NO_ANSWER = 6  # thinking or context exhausted, loop: partial output still printed
    OUTPUT = 7  # stdout could not be written: closed, or a full disk (/dev/full)
    INTERRUPTED = 130  # Ctrl-C


class VibelocalError(Exception):
    """Base of every error a user can see. `str(err)` is the one-line message."""

    exit_code: int = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(VibelocalError):
    """A flag, option or argument is malformed."""

    exit_code = ExitCode.USAGE


class ConfigError(VibelocalError):
    """config.toml or a VIBELOCAL_* variable is malformed."""

    exit_code = ExitCode.USAGE


class BadInputError(VibelocalError):
    """The problem text cannot be used (missing, empty, binary, too long)."""

    exit_code = ExitCode.BAD_INPUT


class ModelUnavailableError(VibelocalError):
    """The model cannot be had: unknown reference, not installed, offline, download failed."""

    exit_code = ExitCode.MODEL_UNAVAILABLE


class UnknownModelError(ModelUnavailableError):
    """A model reference names nothing in the catalog and no file."""


class DownloadError(ModelUnavailableError):
    """A download failed (network, HTTP status, stall)."""


class IntegrityError(DownloadError):
    """A downloaded file failed its sha256 or size check and was removed."""


class DiskSpaceError(ModelUnavailableError):
    """Not enough free disk for a download; nothing was written."""


class BackendError(ModelUnavailableError):
    """A remote backend (`--backend URL`) is down, refused the key, or answered something unusable."""


class ModelLoadError(VibelocalError):
    """llama.cpp could not load the model file (corrupt, truncated, unsupported)."""

    exit_code = ExitCode.MODEL_LOAD


class EngineBusyError(VibelocalError):
    """A model switch (or unload) was asked for while a turn is still streaming on the loaded model."""


class NoAnswerError(VibelocalError):
    """Generation ended without an answer (budget, context, loop)."""

    exit_code = ExitCode.NO_ANSWER


class OutputError(VibelocalError):
    """stdout could not be written (closed, disk full); a reader that went away is not an error."""

    exit_code = ExitCode.OUTPUT
