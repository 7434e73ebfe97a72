"""The engine thread (vibelocal/engine/llama/owner.py): one thread makes every llama.cpp call of a model's life,
whoever consumes; close() from any thread never frees under a running decode; Ctrl-C interrupts a load.

Real SmolLM2-135M through the real binding; the coalescing of the hand-over is tested with a fake clock.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time

import llama_cpp
import llama_cpp.llama_cpp as llama_cpp_lib
import pytest

from vibelocal.engine.control import TurnControl
from vibelocal.engine.llama import load
from vibelocal.engine.llama.loading import LoadInterrupted
from vibelocal.engine.llama.owner import EngineThread, EventHandoff, EventStream
from vibelocal.engine.llama.runtime import EngineClosedError
from vibelocal.types import ChatMessage, GenerationSettings, InstalledModel, Plan, StreamEvent

STORY = [ChatMessage("user", "Write a long, detailed story about a dragon and a knight who become friends.")]


def plan() -> Plan:
    return Plan(fits=True, quant="Q4_1", n_layers=30, n_ctx=2048, n_threads=1, n_batch=512, n_ubatch=512)


def installed(path) -> InstalledModel:
    return InstalledModel(path=path, size_bytes=path.stat().st_size, name="smollm2-test", quant="Q4_1")


def thinking(n: int | None = 16, **kw) -> GenerationSettings:
    base = dict(temperature=0.0, seed=3, max_thinking_tokens=n, max_answer_tokens=8, prefill_think=True)
    base.update(kw)
    return GenerationSettings(**base)


def on_thread(fn, *args):
    """Run fn(*args) on a fresh thread; return its result (or raise its exception)."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vibelocal-engine" and t.is_alive()]


# --------------------------------------------------------------------------- one owning thread


@pytest.fixture
def recorded_calls(monkeypatch):
    """Every llama.cpp function of the binding, wrapped to record (name, calling thread)."""
    calls: list[tuple[str, int]] = []
    for name in dir(llama_cpp_lib):
        fn = getattr(llama_cpp_lib, name)
        if not (name.startswith(("llama_", "ggml_")) and isinstance(fn, ctypes._CFuncPtr)):
            continue

        def record(*args, _fn=fn, _name=name):
            calls.append((_name, threading.get_ident()))
            return _fn(*args)

        monkeypatch.setattr(llama_cpp_lib, name, record)
        if getattr(llama_cpp, name, None) is fn:
            monkeypatch.setattr(llama_cpp, name, record)
    return calls


def test_every_llama_cpp_call_runs_on_the_engine_thread(smollm2_path, recorded_calls):
    consumers = {threading.get_ident()}

    def consume(settings: GenerationSettings) -> str:
        consumers.add(threading.get_ident())
        return "".join(e.text for e in eng.stream(STORY, settings) if e.kind in ("thinking", "answer"))

    eng = on_thread(load, installed(smollm2_path), plan(), None)  # the probe runs too
    first = on_thread(consume, thinking(16))
    second = consume(thinking(0))  # the main thread consumes the next turn
    assert first and second
    assert on_thread(eng.count_tokens, "hello world") > 0
    assert on_thread(eng.close) is True
    names = {name for name, _ in recorded_calls}
    assert {"llama_decode", "llama_sampler_sample", "llama_tokenize", "llama_free"} <= names
    threads = {ident for _, ident in recorded_calls}
    assert len(threads) == 1, f"llama.cpp was called from {len(threads)} threads"
    assert not threads & consumers  # and not from any consumer


# --------------------------------------------------------------------------- close and abandon


def test_close_from_another_thread_mid_stream(smollm2_path):
    eng = load(installed(smollm2_path), plan(), None, check_output=False)
    seen: list[StreamEvent] = []
    started = threading.Event()

    def consume() -> None:
        for ev in eng.stream(STORY, thinking(None)):
            seen.append(ev)
            if ev.kind == "thinking" and ev.thinking_tokens >= 4:
                started.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert started.wait(60)
    closed = on_thread(eng.close)  # a third thread: neither the consumer nor the engine's
    consumer.join(30)
    assert closed is True and not consumer.is_alive()
    assert seen[-1].kind == "done" and seen[-1].stop_reason == "cancelled"
    assert not engine_threads()
    with pytest.raises(EngineClosedError, match="closed"):
        eng.stream(STORY, thinking())
    with pytest.raises(EngineClosedError):
        eng.count_tokens("hello")
    assert eng.close() is True  # twice is fine


def test_close_while_the_prompt_is_evaluated(smollm2_path):
    eng = load(installed(smollm2_path), plan(), None, check_output=False)
    long_prompt = [ChatMessage("user", "Summarize this. " + "The quick brown fox jumps over the dog. " * 150)]
    events = eng.stream(long_prompt, thinking())
    assert eng.close() is True  # llama_decode of the prompt is aborted, then the model is freed
    got = list(events)
    assert got[-1].kind == "done" and got[-1].stop_reason == "cancelled"


def test_an_abandoned_stream_cancels_its_turn_and_frees_the_engine(smollm2_path):
    eng = load(installed(smollm2_path), plan(), None, check_output=False)
    control = TurnControl()
    events = eng.stream(STORY, thinking(None), control)
    next(events)
    events.close()
    assert control.cancelled and not eng.busy
    again = list(eng.stream(STORY, thinking(0, max_answer_tokens=4)))  # not "already generating"
    assert again[-1].kind == "done"
    eng.close()


# --------------------------------------------------------------------------- Ctrl-C while loading


def test_ctrl_c_while_loading_interrupts_the_load(smollm2_path):
    """SIGINT lands in the waiting caller (never in a llama.cpp callback on the engine thread): the load
    stops and its engine thread ends. The signal is sent as soon as the engine thread exists; should the
    load win that race, it is tried again."""
    main = threading.main_thread().ident
    assert threading.get_ident() == main
    interrupted = None
    for _ in range(10):
        stop = threading.Event()

        def interrupt(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                if engine_threads():
                    signal.pthread_kill(main, signal.SIGINT)
                    return
                time.sleep(0.0005)

        sender = threading.Thread(target=interrupt)
        sender.start()
        try:
            eng = load(installed(smollm2_path), plan(), None)
        except LoadInterrupted as exc:
            interrupted = exc
            break
        finally:
            stop.set()
            sender.join()
        eng.close()  # the load won: try again
    assert interrupted is not None, "the interrupt never landed during a load"
    deadline = time.monotonic() + 30
    while engine_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not engine_threads()
    eng = load(installed(smollm2_path), plan(), None, check_output=False)  # loading again works
    assert eng.count_tokens("hello") > 0
    eng.close()


# --------------------------------------------------------------------------- the thread and the hand-over


def test_jobs_run_in_order_and_errors_reach_the_caller():
    owner = EngineThread(name="test-owner")
    order: list[int] = []
    futures = [owner.submit(order.append, i) for i in range(5)]
    assert owner.call(lambda: threading.current_thread().name) == "test-owner"
    with pytest.raises(ZeroDivisionError):
        owner.call(lambda: 1 / 0)
    assert [f.result() for f in futures] == [None] * 5 and order == [0, 1, 2, 3, 4]
    owner.stop()
    assert owner.join(10)
    with pytest.raises(RuntimeError, match="stopped"):
        owner.submit(print)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def text(n: int) -> StreamEvent:
    return StreamEvent("thinking", text=f"t{n} ")


def test_the_handoff_coalesces_by_time_and_count():
    clock = Clock()
    box = EventHandoff(interval=0.04, max_events=5, clock=clock)
    for i in range(3):
        clock.now += 0.01
        box.put(text(i))  # 30 ms: still held
    clock.now += 0.015
    box.put(text(3))  # 45 ms since the last hand-over: these four go
    for i in range(4, 9):
        box.put(text(i))  # no time passes: five events make a batch
    box.put(StreamEvent("budget", note="warning"))  # a rare event goes at once, with what waits
    box.put(StreamEvent("done", stop_reason="answered"))
    box.end()
    sizes = [len(b) for b in box.batches()]
    assert sizes == [4, 5, 1, 1]  # the done waited for end()
    assert box.wait_end(0)


def test_the_handoff_raises_the_turn_error_after_its_events():
    box = EventHandoff(interval=10.0, clock=Clock())
    box.put(text(0))
    box.end(ValueError("hook failed"))
    got = []
    with pytest.raises(ValueError, match="hook failed"):
        for batch in box.batches():
            got += batch
    assert len(got) == 1


def test_an_event_stream_gives_events_or_the_batches_as_handed_over():
    def handoff() -> EventHandoff:
        box = EventHandoff(interval=0.04, max_events=2, clock=Clock())
        for i in range(3):
            box.put(text(i))
        box.put(StreamEvent("done", stop_reason="answered"))
        box.end()
        return box

    cancels: list[bool] = []
    batches = list(EventStream(handoff(), lambda: cancels.append(True), 1.0).batches())
    assert [len(b) for b in batches] == [2, 2]
    events = list(EventStream(handoff(), lambda: cancels.append(True), 1.0))
    assert [e.kind for e in events] == ["thinking"] * 3 + ["done"]
    assert not cancels  # read to the end: nothing to cancel


def test_an_event_stream_closed_early_cancels_the_turn_and_waits_for_it():
    for read_first in (False, True):
        box = EventHandoff(interval=10.0, clock=Clock())
        box.put(text(0))
        box.put(StreamEvent("budget", note="warning"))
        cancelled = threading.Event()

        def cancel(box=box, cancelled=cancelled) -> None:
            cancelled.set()
            box.end()  # the engine thread ends the cancelled turn

        stream = EventStream(box, cancel, 1.0)
        if read_first:
            assert next(stream).kind == "thinking"
        stream.close()
        assert cancelled.is_set() and box.wait_end(0)
