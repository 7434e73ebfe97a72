"""`vibelocal serve` as a command: bind rules, the API key, bad flags, and Ctrl-C that drains and exits 0."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request

import openai
import pytest
from serveproc import ServeProcess
from typer.testing import CliRunner

from vibelocal.cli import app


def serve(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["serve", *args], env=env)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--host", "0.0.0.0"], 2, "--api-key"),
        (["--host", "192.168.1.20"], 2, "VIBELOCAL_API_KEY"),
        (["--reasoning-field", "thoughts"], 2, "--reasoning-field"),
        (["--effort", "ultra=5"], 2, "--effort"),
        (["--budget", "lots"], 2, "invalid budget"),
        (["--model", "no-such-file.gguf"], 4, "no-such-file.gguf"),
    ],
)
def test_bad_command_lines_are_one_error_line(args, code, needle, smollm2_path) -> None:
    model = [] if "--model" in args else ["--model", str(smollm2_path)]
    result = serve(*model, *args)
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.real_model
@pytest.mark.slow
def test_non_loopback_bind_requires_the_key_on_every_route(smollm2_path, tmp_path) -> None:
    proc = ServeProcess(
        ["--model", str(smollm2_path), "--host", "0.0.0.0", "--prefill-think", "--ctx", "1024"],
        tmp_path,
        env={"VIBELOCAL_API_KEY": "s3cret"},
    )
    try:
        good = {"Authorization": "Bearer s3cret"}
        proc.wait_ready(good)
        for path in ("/health", "/v1/models"):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                status, body = proc.get(path, headers)
                assert status == 401 and body["error"]["code"] == "invalid_api_key", (path, headers)
        status, _ = proc.post("/v1/chat/completions/control", b'{"id": "x", "action": "cancel"}')
        assert status == 401
        nokey = openai.OpenAI(base_url=proc.base_url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            nokey.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        keyed = openai.OpenAI(base_url=proc.base_url, api_key="s3cret", max_retries=0, timeout=600)
        resp = keyed.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=6, reasoning_effort="none"
        )
        assert resp.choices[0].message.content
    finally:
        assert proc.stop() == 0


@pytest.mark.real_model
@pytest.mark.slow
def test_ctrl_c_drains_the_running_stream_then_exits_0(smollm2_path, tmp_path) -> None:
    proc = ServeProcess(["--model", str(smollm2_path), "--prefill-think", "--ctx", "1024"], tmp_path)
    proc.wait_ready()
    body = {
        "messages": [{"role": "user", "content": "What is 3+4?"}],
        "stream": True,
        "thinking_budget_tokens": 16,
        "max_tokens": 12,
    }
    req = urllib.request.Request(
        proc.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        with urllib.request.urlopen(req, timeout=600) as resp:
            for raw in resp:
                if raw.strip():
                    lines.append(raw.decode().strip())
                    started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(300)
    code = proc.stop(signal.SIGINT)
    reader.join(600)
    assert code == 0
    assert lines[-1] == "data: [DONE]", "the running stream was finished, not cut"
    finals = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    assert finals[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "serve: stopped" in proc.log()
    assert "Traceback" not in proc.log()
