"""`vibelocal solve` end to end: CliRunner (stdout and stderr apart), the real SmolLM2 engine, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from testpaths import FIXTURES, ROOT
from typer.testing import CliRunner

from vibelocal.cli import app
from vibelocal.cli import solve as solve_cli
from vibelocal.config import Settings
from vibelocal.engine.scripted import Script, ScriptedEngine
from vibelocal.paths import Paths
from vibelocal.session import Session

PROBLEMS = FIXTURES / "problems"
FAST = ["--prefill-think", "--budget", "24", "--answer-budget", "24", "--seed", "7"]
ENVELOPE_KEYS = {
    "answer", "final_answer", "thinking", "stop_reason", "budget_hit", "usage", "timings", "model", "plan",
    "settings", "seed", "speculation",
}  # fmt: skip


def solve(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["solve", *args], input=input, env=env)


class KeepOpen:
    """A shared engine that survives each command's `session.close()`."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.info = engine.info

    def count_tokens(self, text: str) -> int:
        return self._engine.count_tokens(text)

    def stream(self, messages, settings, control=None):
        return self._engine.stream(messages, settings, control)

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def real_engine(smollm2_path, tmp_path_factory):
    """The real SmolLM2 engine, loaded once for the module through the session."""
    root = tmp_path_factory.mktemp("solve-engine")
    paths = Paths(root / "config", root / "data", root / "cache")
    session = Session(Settings(model=str(smollm2_path), ctx=2048), paths=paths)
    engine = session.engine()
    yield KeepOpen(engine)
    session.close()


def use_engine(monkeypatch, engine) -> list[Session]:
    made: list[Session] = []

    def factory(settings, on_status):
        session = Session(settings, on_status=on_status, engine_loader=lambda m, p, s: engine)
        made.append(session)
        return session

    monkeypatch.setattr(solve_cli, "make_session", factory)
    return made


# --------------------------------------------------------------------------- the real model


@pytest.mark.real_model
def test_answer_alone_on_stdout_through_the_full_load_path(smollm2_path):
    plain = solve(str(PROBLEMS / "add.md"), "--model", str(smollm2_path), *FAST)
    assert plain.exit_code == 0, plain.stderr
    assert "<think>" not in plain.stdout and "</think>" not in plain.stdout
    as_json = solve(str(PROBLEMS / "add.md"), "--model", str(smollm2_path), *FAST, "--json")
    data = json.loads(as_json.stdout)
    assert plain.stdout == data["answer"] + "\n"  # the answer, and only the answer (same seed, same text)
    assert data["thinking"] and data["thinking"] not in plain.stdout + plain.stderr  # no thinking off a TTY


@pytest.mark.real_model
def test_json_envelope_schema(monkeypatch, real_engine, smollm2_path):
    use_engine(monkeypatch, real_engine)
    result = solve(str(PROBLEMS / "half.md"), "--model", str(smollm2_path), *FAST, "--json")
    assert result.exit_code in (0, 6), result.stderr
    data = json.loads(result.stdout)
    assert set(data) == ENVELOPE_KEYS
    assert isinstance(data["answer"], str) and isinstance(data["thinking"], str)
    assert data["final_answer"] is None or isinstance(data["final_answer"], str)
    assert data["stop_reason"] in ("answered", "budget_exhausted", "context_full", "loop")
    assert isinstance(data["budget_hit"], bool)
    usage = data["usage"]
    assert set(usage) == {
        "prompt_tokens",
        "thinking_tokens",
        "answer_tokens",
        "forced_tokens",
        "evaluated_tokens",
    }
    assert usage["prompt_tokens"] > 10 and usage["thinking_tokens"] <= 24 + 48
    assert usage["evaluated_tokens"] >= usage["thinking_tokens"] + usage["answer_tokens"]
    assert set(data["timings"]) == {"ttft_s", "prefill_tok_s", "decode_tok_s", "total_s"}
    assert data["timings"]["total_s"] > 0 and data["timings"]["decode_tok_s"] > 0
    assert data["model"] == {
        "path": str(smollm2_path.resolve()),
        "sha256": None,
        "quant": "Q4_1",
        "think_tags": "text",
    }
    assert data["plan"]["n_ctx"] >= 512 and data["plan"]["backend"] == "cpu"
    assert data["settings"]["max_thinking_tokens"] == 24 and data["settings"]["kind"] == "math"
    assert data["settings"]["budget"] == "24" and data["settings"]["force_boxed"] is True
    assert data["seed"] == 7


@pytest.mark.real_model
def test_show_thinking_on_a_pipe_and_stdin(monkeypatch, real_engine, smollm2_path):
    use_engine(monkeypatch, real_engine)
    result = solve("-", "--model", str(smollm2_path), *FAST, "--show-thinking", input="What is 3 + 4?\n")
    assert result.exit_code == 0, result.stderr
    data = json.loads(
        solve("-", "--model", str(smollm2_path), *FAST, "--json", input="What is 3 + 4?\n").stdout
    )
    assert data["thinking"][:20] in result.stderr
    assert data["thinking"][:20] not in result.stdout


@pytest.mark.real_model
def test_votes_on_the_real_model(monkeypatch, real_engine, smollm2_path):
    use_engine(monkeypatch, real_engine)
    result = solve(str(PROBLEMS / "add.md"), "--model", str(smollm2_path), *FAST, "--votes", "2", "--json")
    data = json.loads(result.stdout)
    assert [s["seed"] for s in data["samples"]] == [7, 8]
    assert data["agreement"]["total"] == 2
    assert "note: sample 1/2 (seed 7)" in result.stderr and "note: agreement " in result.stderr
    assert result.exit_code == (0 if data["agreement"]["answer"] else 6)


@pytest.mark.real_model
def test_no_final_answer_exits_6_on_the_real_model(monkeypatch, real_engine, smollm2_path):
    use_engine(monkeypatch, real_engine)
    args = [str(PROBLEMS / "add.md"), "--model", str(smollm2_path), *FAST, "--kind", "other"]
    result = solve(*args, "--answer-only")  # no \boxed{} is asked for, and SmolLM2 never writes one unasked
    assert result.exit_code == 6, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("error: no final answer found in the answer")
    plain = solve(*args)
    assert plain.exit_code == 0 and plain.stdout.strip()  # the same answer counts without --answer-only


@pytest.mark.real_model
def test_problem_too_long_for_the_context(smollm2_path, tmp_path):
    problem = tmp_path / "huge.md"
    problem.write_text("Add up these numbers: " + " + ".join(str(i) for i in range(1, 400)))
    result = solve(str(problem), "--model", str(smollm2_path), "--ctx", "512", *FAST)
    assert result.exit_code == 3
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line.startswith("error: the problem is too long: ") and "tokens vs limit 384" in line
    assert "\n" not in line and "Traceback" not in line


@pytest.mark.real_model
def test_ctrl_c_keeps_partial_output_and_exits_130(smollm2_path, tmp_path):
    problem = tmp_path / "count.md"
    problem.write_text("Count from 1 to 500, one number per line, then say done.\n")
    env = dict(os.environ, VIBELOCAL_LOOP_DETECTION="false", VIBELOCAL_MIN_THINKING="100000")
    cmd = [sys.executable, "-m", "vibelocal", "solve", str(problem), "--model", str(smollm2_path), "--prefill-think",
           "--budget", "unlimited", "--show-thinking", "--ctx", "2048", "--seed", "3"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = b""
    deadline = time.monotonic() + 120
    while len(seen) < 100 and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read() or b""
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    seen += err
    assert proc.returncode == 130, seen.decode()[-2000:]
    assert len(seen) >= 100  # the partial thinking was kept
    assert seen.decode().rstrip().endswith("interrupted: partial output kept")
    assert b"Traceback" not in seen


# ------------------------------------------------------------------- bad input: one line, its exit code


def test_bad_problem_inputs(tmp_path, smollm2_path):
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.md").write_bytes(b"  \n\n\t")
    (tmp_path / "binary.md").write_bytes(b"\x7fELF\x02\x01\x00\x00binary")
    (tmp_path / "utf16.md").write_bytes("What is 2+2?".encode("utf-16"))
    (tmp_path / "latin1.md").write_bytes("R\u00e9soudre x+1=2".encode("latin-1"))
    (tmp_path / "huge.md").write_bytes(b"1+1\n" * 300_000)
    cases = {
        "missing.md": "problem file not found",
        ".": "is a directory, not a problem file",
        "empty.md": "is empty",
        "blank.md": "is blank (only whitespace)",
        "binary.md": "is binary, not text (NUL byte at offset 6)",
        "utf16.md": "is UTF-16 (little-endian) text, not UTF-8",
        "latin1.md": "is not valid UTF-8: invalid byte 0xe9 at offset 1",
        "huge.md": "is too large: 1,200,000 bytes (the limit is 1,000,000 bytes)",
    }
    for name, message in cases.items():
        result = solve(str(tmp_path / name), "--model", str(smollm2_path))
        assert result.exit_code == 3, (name, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and message in result.stderr, (name, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_empty_stdin():
    result = solve("-", input="")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: stdin is empty")


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--budget", "lots"], 2, "error: invalid budget 'lots'"),
        (["--budget", "1.5"], 2, "a token count is a whole number"),
        (["--hide-thinking", "--show-thinking"], 2, "contradict each other"),
        (["--json", "--answer-only"], 2, "contradict each other"),
        (["--votes", "0"], 2, "Invalid value for '--votes'"),
        (["--temperature", "9"], 2, "invalid setting 'temperature'"),
        (["--kind", "poem"], 2, "Invalid value for '--kind'"),
        (["--model", "no-such-model"], 4, "error: unknown model 'no-such-model'"),
        (["--model", "./missing.gguf"], 4, "does not exist"),
    ],
)
def test_usage_and_model_errors(args, code, message):
    result = solve(str(PROBLEMS / "add.md"), *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_broken_model_files_exit_5(tmp_path, smollm2_path):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(smollm2_path.read_bytes()[: 2 * 1024 * 1024])
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is not a model\n" * 10)
    for path in (truncated, not_gguf):
        result = solve(str(PROBLEMS / "add.md"), "--model", str(path), *FAST)
        assert result.exit_code == 5, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@pytest.mark.real_model
def test_first_run_pulls_with_yes_then_solves(monkeypatch, real_engine, smollm2_path):
    from hubserver import REPO, HubServer, manifest, write_manifest

    made = use_engine(monkeypatch, real_engine)
    with HubServer() as hub:
        hub.add_file(REPO, smollm2_path.name, smollm2_path)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        write_manifest(manifest([REPO], smollm2_path.name, smollm2_path.stat().st_size))
        refused = solve(str(PROBLEMS / "add.md"), "--model", "smol-test", *FAST)
        assert refused.exit_code == 4 and "is not downloaded" in refused.stderr and "--yes" in refused.stderr
        pulled = solve(str(PROBLEMS / "add.md"), "--model", "smol-test", *FAST, "--yes", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    data = json.loads(pulled.stdout)
    assert data["model"]["quant"] == "Q4_1" and data["model"]["sha256"]  # a verified download
    assert made[-1].model is not None and made[-1].model.verified
    again = solve(str(PROBLEMS / "add.md"), "--model", "smol-test", *FAST)  # installed now: no server needed
    assert again.exit_code == 0, again.stderr


def test_model_not_installed_without_a_tty_exits_4():
    result = solve(str(PROBLEMS / "add.md"), "--model", "vibethinker-3b")
    assert result.exit_code == 4, result.stderr
    assert "is not downloaded" in result.stderr and "--yes" in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- the scripted engine


def scripted(monkeypatch, smollm2_path, answers: dict[int | None, Script] | Script):
    """Use a scripted engine; `answers` maps a seed to its script (votes) or is one script for all."""

    class BySeed(ScriptedEngine):
        def stream(self, messages, settings, control=None):
            if isinstance(answers, dict):
                self._script = answers[settings.seed]
            return super().stream(messages, settings, control)

    engine = BySeed(answers if isinstance(answers, Script) else Script())
    use_engine(monkeypatch, engine)
    return engine


def test_answer_only_prints_the_final_answer(monkeypatch, smollm2_path):
    engine = scripted(
        monkeypatch, smollm2_path, Script("thinking about it", "So \\boxed{\\frac{1}{2}} it is.")
    )
    result = solve(str(PROBLEMS / "half.md"), "--model", str(smollm2_path), "--answer-only")
    assert result.exit_code == 0
    assert result.stdout == "\\frac{1}{2}\n"  # raw on a pipe
    sent = engine.turns[0][0].content
    assert sent.startswith("Compute $\\frac{1}{4} + \\frac{1}{4}$.") and sent.endswith("within \\boxed{}.")
    assert "answer: 1/2" not in sent  # the front matter stays out of the prompt


def test_answer_only_without_a_final_answer_exits_6(monkeypatch, smollm2_path):
    scripted(monkeypatch, smollm2_path, Script("hmm", "It is one half."))
    result = solve(str(PROBLEMS / "half.md"), "--model", str(smollm2_path), "--answer-only")
    assert result.exit_code == 6
    assert result.stdout == ""
    assert (
        result.stderr == "error: no final answer found in the answer (run without --answer-only to see it)\n"
    )


def test_code_problem_gets_the_code_suffix_and_the_last_block(monkeypatch, smollm2_path):
    answer = "Draft:\n```python\ndef add(a, b): pass\n```\nFinal:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    engine = scripted(monkeypatch, smollm2_path, Script("plan", answer))
    result = solve(str(PROBLEMS / "code.md"), "--model", str(smollm2_path), "--json")
    data = json.loads(result.stdout)
    assert data["final_answer"] == "def add(a, b):\n    return a + b"
    assert data["settings"]["kind"] == "code" and data["settings"]["force_boxed"] is False
    assert engine.turns[0][0].content.endswith("in one fenced code block.")


def test_budget_exhausted_without_an_answer_exits_6_after_printing(monkeypatch, smollm2_path):
    scripted(monkeypatch, smollm2_path, Script("a b c d. e f g h", ""))
    result = solve(str(PROBLEMS / "add.md"), "--model", str(smollm2_path), "--show-thinking", "--budget", "4")
    assert result.exit_code == 6
    assert (
        "a b c d." in result.stderr and " e f" not in result.stderr
    )  # the sentence ends at the cap: wrap there
    assert "note: thinking budget reached (4/4 tokens): wrapping up" in result.stderr
    assert result.stderr.rstrip().endswith(
        "error: no answer: the model gave no answer text (try a larger --budget)"
    )


def test_votes_group_equivalent_answers(monkeypatch, smollm2_path):
    answers = {
        10: Script("t", "\\boxed{3}"),
        11: Script("t", "so \\boxed{1/2}"),
        12: Script("t", "\\boxed{0.5}"),
        13: Script("t", "\\boxed{\\frac12}"),
    }
    scripted(monkeypatch, smollm2_path, answers)
    args = [str(PROBLEMS / "half.md"), "--model", str(smollm2_path), "--votes", "4", "--seed", "10"]
    result = solve(*args, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == ENVELOPE_KEYS | {"samples", "agreement"}
    assert data["final_answer"] == "1/2" and data["answer"] == "so \\boxed{1/2}"
    assert [s["final_answer"] for s in data["samples"]] == ["3", "1/2", "0.5", "\\frac12"]
    assert [s["seed"] for s in data["samples"]] == [10, 11, 12, 13]
    agreement = data["agreement"]
    assert agreement["agreement"] == "3/4" and agreement["votes"] == 3 and agreement["ratio"] == 0.75
    assert agreement["groups"] == [{"answer": "1/2", "samples": [1, 2, 3]}, {"answer": "3", "samples": [0]}]
    assert "note: agreement 3/4: 1/2" in result.stderr

    plain = solve(*args)
    assert plain.stdout == "so \\boxed{1/2}\n"  # the winning sample's answer
    only = solve(*args, "--answer-only")
    assert only.stdout == "1/2\n"


def test_votes_without_any_final_answer_exit_6(monkeypatch, smollm2_path):
    scripted(monkeypatch, smollm2_path, {5: Script("t", "no idea"), 6: Script("t", "none")})
    result = solve(str(PROBLEMS / "add.md"), "--model", str(smollm2_path), "--votes", "2", "--seed", "5")
    assert result.exit_code == 6
    assert "none of the 2 samples gave a final answer" in result.stderr


@pytest.mark.parametrize(
    "stop, answer, final, answer_only, outcome",
    [
        ("answered", "x is 2", None, False, 0),
        ("answered", "\\boxed{2}", "2", True, 0),
        ("budget_exhausted", "partial \\boxed{2}", "2", False, 0),
        ("answered", "x is 2", None, True, "no final answer found in the answer"),
        ("answered", "  ", None, False, "no answer: the model gave no answer text"),
        ("budget_exhausted", "", None, False, "no answer: the thinking and answer budgets ran out"),
        ("context_full", "half an ans", None, False, "no answer: the context filled up"),
        ("loop", "", None, False, "no answer: the model was stuck in a loop"),
        ("error", "", None, False, "no answer: generation failed"),
        ("cancelled", "partial", None, False, 130),
    ],
)
def test_exit_code_table(stop, answer, final, answer_only, outcome):
    from vibelocal.answers.extract import TurnRecord
    from vibelocal.errors import NoAnswerError

    record = TurnRecord(answer=answer, stop_reason=stop)
    if isinstance(outcome, int):
        assert solve_cli.exit_code(record, final, answer_only=answer_only) == outcome
    else:
        with pytest.raises(NoAnswerError, match=outcome) as err:
            solve_cli.exit_code(record, final, answer_only=answer_only)
        assert err.value.exit_code == 6


# --------------------------------------------------------------------------- lazy imports


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from vibelocal.cli import main\n"
        "for argv in (['--help'], ['solve', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "heavy = sorted(m for m in ('llama_cpp', 'textual', 'huggingface_hub') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    words = " ".join(out.stdout.replace("│", " ").split())
    assert "--hide-thinking" in words and "6 no answer" in words and "130 interrupted" in words
    assert "HEAVY []" in out.stdout


@pytest.mark.real_model
def test_speculate_flag_reaches_the_engine_and_the_json_reports_drafts(
    monkeypatch, real_engine, smollm2_path
):
    use_engine(monkeypatch, real_engine)
    args = [str(PROBLEMS / "half.md"), "--model", str(smollm2_path), *FAST, "--json"]
    off = json.loads(solve(*args).stdout)
    assert off["settings"]["speculate"] is False
    assert off["speculation"] == {"drafted": 0, "accepted": 0, "acceptance_rate": 0.0}
    on = json.loads(solve(*args, "--speculate").stdout)
    assert on["settings"]["speculate"] is True
    spec = on["speculation"]
    assert spec["drafted"] > 0 and 0 <= spec["accepted"] <= spec["drafted"]
    assert spec["acceptance_rate"] == round(spec["accepted"] / spec["drafted"], 4)
    usage = on["usage"]
    assert usage["rejected_draft_tokens"] == spec["drafted"] - spec["accepted"]
