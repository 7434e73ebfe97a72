"""Command-line options shared by several commands, so every command spells and explains them alike."""

from __future__ import annotations

import typer

MODEL = typer.Option(
    None,
    "--model",
    "-m",
    metavar="REF",
    help="Model: an alias (vibethinker-3b, vibethinker-3b:Q8_0), OWNER/REPO:QUANT, OWNER/REPO/FILE.gguf "
    "or a .gguf path (default: the configured model).",
)

BUDGET = typer.Option(
    None,
    "--budget",
    "-b",
    metavar="BUDGET",
    help="Thinking budget per turn: off, low (2k), medium (8k), high (24k), unlimited, "
    "a token count (8000, 2k) or a time (90s, 2m).",
)

PREFILL_THINK = typer.Option(
    None,
    "--prefill-think/--no-prefill-think",
    help="Start the model's turn inside <think> (default: the model's setting); for models that do not think "
    "on their own.",
)

YES = typer.Option(False, "--yes", "-y", help="Download the model without asking when it is not installed.")

BACKEND = typer.Option(
    None,
    "--backend",
    metavar="URL",
    help="Run on a server instead of this machine: a llama-server, vLLM or vibelocal serve URL (http://host:port).",
)

API_KEY = typer.Option(
    None, "--api-key", metavar="KEY", help="Bearer key for the --backend server (or VIBELOCAL_API_KEY)."
)

PROMPT = typer.Option(
    None,
    "--prompt",
    "-p",
    metavar="TEXT",
    help='The problem itself, inline: -p "What is 2+3?" (instead of FILE).',
)
