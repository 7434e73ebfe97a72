"""User settings: pydantic, one docstring per field; flags > VIBELOCAL_* env > config.toml > defaults."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vibelocal.errors import ConfigError, UsageError
from vibelocal.files import read_capped
from vibelocal.paths import Paths, get_paths

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "VIBELOCAL_"
SEED_MAX = 2**32 - 2
"""The largest seed: llama.cpp takes 32-bit seeds and reads 2**32 - 1 as "pick one at random"."""

# --------------------------------------------------------------------------- the budget setting

PRESETS: dict[str, int | None] = {
    "off": 0,
    "low": 2048,
    "medium": 8192,
    "high": 24576,
    "unlimited": None,
}

MAX_BUDGET_TOKENS = 10_000_000
"""A token budget above this (far beyond any context) is a typo; `unlimited` says it plainly."""
MAX_BUDGET_SECONDS = 86_400.0
"""A time budget is at most a day."""
_MAX_NUMBER_CHARS = 12
"""Longer numbers are refused before any float or int conversion can overflow."""

_TOKENS = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<k>[kK])?$")
_TIME = re.compile(r"^(?:(?P<m>\d+(?:\.\d+)?)\s*m(?:in)?)?\s*(?:(?P<s>\d+(?:\.\d+)?)\s*s(?:ec)?)?$")


@dataclass(frozen=True)
class BudgetSpec:
    """A thinking budget: tokens (None = unlimited, 0 = no thinking) or a time in seconds."""

    label: str
    tokens: int | None = None
    seconds: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and self.seconds is None


def parse_budget(text: str | int | None) -> BudgetSpec:
    """`off|low|medium|high|unlimited`, `8000`, `2k` (= 2048), `90s`, `2m`, `1m30s`; UsageError otherwise."""
    if text is None:
        return BudgetSpec("medium", PRESETS["medium"])
    if isinstance(text, int):
        if text < 0:
            raise UsageError(f"invalid budget {text}: must be 0 or more")
        return BudgetSpec(str(text), _check_tokens(text, str(text) if text < 10**12 else "a huge number"))
    raw = text.strip().lower()
    if any(len(n) > _MAX_NUMBER_CHARS for n in re.findall(r"[\d.]+", raw)):
        raise UsageError(
            f"invalid budget {_short(text)}: a number longer than {_MAX_NUMBER_CHARS} characters",
            hint=f"the largest budgets are {MAX_BUDGET_TOKENS:,} tokens or 24h; or use unlimited",
        )
    if raw in PRESETS:
        return BudgetSpec(raw, PRESETS[raw])
    if raw in {"none", "inf", "infinite", "unbounded"}:
        return BudgetSpec("unlimited", None)
    if m := _TOKENS.match(raw):
        value = float(m["n"]) * (1024 if m["k"] else 1)
        if not m["k"] and "." in m["n"]:
            raise UsageError(f"invalid budget {text!r}: a token count is a whole number")
        return BudgetSpec(raw, _check_tokens(int(value), text))
    if raw and (m := _TIME.match(raw)) and (m["m"] or m["s"]):
        seconds = float(m["m"] or 0) * 60 + float(m["s"] or 0)
        if seconds <= 0:
            raise UsageError(f"invalid budget {text!r}: a time budget must be more than 0s")
        if seconds > MAX_BUDGET_SECONDS:
            raise UsageError(
                f"invalid budget {text!r}: {seconds:,.0f}s is more than a day ({MAX_BUDGET_SECONDS:,.0f}s)",
                hint="use unlimited for no limit",
            )
        return BudgetSpec(raw, None, seconds)
    raise UsageError(
        f"invalid budget {_short(text)}: use off, low, medium, high, unlimited, a token count (8000, 2k) or a time (90s, 2m)"
    )


def _check_tokens(tokens: int, text: str) -> int:
    if tokens > MAX_BUDGET_TOKENS:
        raise UsageError(
            f"invalid budget {_short(text)}: more than {MAX_BUDGET_TOKENS:,} tokens",
            hint="use unlimited for no limit",
        )
    return tokens


def _short(text: str) -> str:
    """A value quoted for a message, cut to 40 characters."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


# --------------------------------------------------------------------------- settings


class Settings(BaseModel):
    """Everything a user can set. This class is the reference documentation for config.toml."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

    model: str = "vibethinker-3b"
    """Default model: a catalog alias (`vibethinker-3b`, `vibethinker-3b:Q8_0`), `OWNER/REPO:QUANT`,
    `OWNER/REPO/FILE.gguf`, or a path to a .gguf file."""

    quant: str | None = None
    """Force a quantization (e.g. `Q4_K_M`) instead of the planner's choice."""

    budget: str = "medium"
    """Reasoning budget per turn: `off`, `low` (2k), `medium` (8k), `high` (24k), `unlimited`, a token count
    (`8000`, `2k`) or a time (`90s`, `2m`)."""

    answer_budget: int = Field(default=2048, ge=16)
    """Most tokens the answer (after thinking) may take before a final answer is forced."""

    min_thinking: int = Field(default=0, ge=0)
    """Minimum thinking tokens: an earlier `</think>` is replaced with "Wait" and thinking goes on."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    """Sampling temperature; unset uses the model manifest's (0.6 for VibeThinker)."""

    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    """Nucleus sampling; unset uses the manifest's (0.95)."""

    top_k: int | None = Field(default=None, ge=0)
    """Top-k sampling, 0 for off; unset uses the manifest's (off)."""

    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    """Random seed, 0 to 4294967294 (llama.cpp's seeds are 32-bit; 4294967295 means "random" there);
    unset picks a fresh one per turn (and reports it)."""

    ctx: int | None = Field(default=None, ge=512)
    """Wanted context length in tokens; unset lets the planner choose (at least 16k where memory allows)."""

    kv_cache_type: Literal["f16", "q8_0", "q4_0"] = "f16"
    """KV cache precision; q8_0 halves its memory at a small quality cost."""

    n_gpu_layers: int | None = None
    """Override the planner's GPU layer count (-1 for all, 0 for CPU only)."""

    threads: int | None = Field(default=None, ge=1)
    """CPU threads for decoding; unset uses the physical core count."""

    show_thinking: bool = True
    """Show the model's thinking while it streams (solve on a TTY, the chat app)."""

    prefill_think: bool | None = None
    """Start the assistant turn inside `<think>`; unset uses the manifest's setting."""

    loop_detection: bool = True
    """Watch the thinking for loops and repetition, and nudge the model to wrap up."""

    offline: bool = False
    """Never touch the network (like HF_HUB_OFFLINE=1): use only models already downloaded."""

    backend: str | None = Field(default=None, max_length=2048)
    """Run turns on a server instead of this machine: `http://host:port` of a llama-server, a vLLM server or
    another `vibelocal serve` (the kind is detected). Unset runs the model locally."""

    api_key: str | None = Field(default=None, max_length=4096, repr=False)
    """Bearer key sent to the `backend` server (`VIBELOCAL_API_KEY`); `vibelocal serve` requires the same key of
    its clients (`--api-key`, else the variable, else this setting), and one is needed beyond loopback."""

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_parses(cls, value: Any) -> Any:
        """A budget in config.toml or VIBELOCAL_BUDGET is checked here, so its error names the file and key."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            try:
                parse_budget(value)
            except UsageError as exc:
                raise ValueError(exc.message.removeprefix("invalid budget ")) from None
        return value


MAX_CONFIG_BYTES = 1_000_000
"""config.toml is a few hundred bytes; a larger file (or a FIFO, a device) is refused before it is read."""


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    raw = read_capped(path, "config file", MAX_CONFIG_BYTES, ConfigError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text: invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}",
            hint="TOML files are UTF-8; fix or delete the file",
        ) from None
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", hint="fix or delete the file") from None


def _read_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    return values


def _describe(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "?"
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"invalid setting {where!r} in {source}: {msg}"


def load_settings(
    overrides: dict[str, Any] | None = None,
    *,
    paths: Paths | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge defaults, config.toml, VIBELOCAL_* variables and flag overrides (None values are ignored)."""
    paths = paths or get_paths(environ)
    env = os.environ if environ is None else environ
    if overrides and overrides.get("budget") is not None:
        parse_budget(overrides["budget"])  # a --budget flag's error is about the flag, not a settings layer
    layers = [
        (str(paths.config_file), _read_toml(paths.config_file)),
        ("the environment", _read_env(env)),
        ("the command line", {k: v for k, v in (overrides or {}).items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    for source, layer in layers:
        merged.update(layer)
        try:  # validate per layer so the error names the source at fault
            Settings.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source)) from exc
    return Settings.model_validate(merged)


def save_settings(changes: dict[str, Any], *, paths: Paths | None = None, drop: str | None = None) -> Path:
    """Write `changes` into config.toml, keeping keys already there (but `drop`). Returns the file."""
    import tomli_w

    paths = paths or get_paths()
    current = {k: v for k, v in _read_toml(paths.config_file).items() if k != drop}
    current.update(changes)
    current = {k: v for k, v in current.items() if v is not None}
    Settings.model_validate(current)
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.config_file.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(current), encoding="utf-8")
    tmp.replace(paths.config_file)
    return paths.config_file
