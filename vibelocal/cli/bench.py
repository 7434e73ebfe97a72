"""`vibelocal bench`: how fast this machine runs the model under its plan, against the memory-bandwidth roofline.

Fields follow llama-bench (`test`, `n_prompt`, `n_gen`, `n_depth`, `avg_ts`, `stddev_ts`). The result is stored
(placement/measured.py) and from then on the planner's expected speed and time budgets use it.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from vibelocal.cli import options
from vibelocal.cli.output import print_json, report_error
from vibelocal.errors import ModelUnavailableError, UsageError, VibelocalError

MAX_DEPTH = 131_072


def _depths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v.strip().lower().replace("k", "000")) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--depths {text!r}: give comma-separated token counts, e.g. 0,4k,16k") from None
    if not values or any(not 0 <= v <= MAX_DEPTH for v in values):
        raise UsageError(f"--depths {text!r}: each depth must be between 0 and {MAX_DEPTH:,}")
    return tuple(sorted(set(values)))


def _votes(text: str) -> tuple[int, ...]:
    """`--votes 1,4`: the K of each vote row; `0` or an empty list measures none."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--votes {text!r}: give comma-separated sample counts, e.g. 1,4") from None
    if any(not 0 <= v <= 64 for v in values):
        raise UsageError(f"--votes {text!r}: each K must be between 1 and 64 (0 for none)")
    return tuple(sorted({v for v in values if v > 0}))


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        model: str | None = options.MODEL,
        pp: int = typer.Option(512, "--pp", min=1, max=8192, help="Prompt tokens for the prompt-processing test."),
        tg: int = typer.Option(128, "--tg", min=1, max=4096, help="Tokens for each generation test."),
        depths: str = typer.Option("0,4k,16k", "--depths", help="Cache depths for the generation tests."),
        repetitions: int = typer.Option(3, "--repetitions", "-r", min=1, max=20, help="Runs of each test."),
        votes: str = typer.Option("1,4", "--votes", metavar="K,K", help="K samples side by side for the vote rows (0: none)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (llama-bench field names)."),
        save: bool = typer.Option(True, "--save/--no-save", help="Store the result for the planner's estimates."),
    ) -> None:  # fmt: skip
        """Measure prompt and decode speed on this machine (pp512, tg128 at depths 0/4k/16k) and the roofline,
        and greedy decoding of a copied sequence without and with speculative decoding (copy128, copy128 +spec).

        Exit codes: 0 measured, 2 usage error, 4 model not installed, 5 model failed to load, 130 interrupted.
        """
        try:
            result = run_bench_command(
                model, pp, tg, _depths(depths), repetitions, as_json=as_json, save=save, votes=_votes(votes)
            )
        except VibelocalError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        if as_json:
            print_json(result)


def run_bench_command(
    ref: str | None,
    pp: int,
    tg: int,
    depths: tuple[int, ...],
    repetitions: int,
    *,
    as_json: bool,
    save: bool,
    votes: tuple[int, ...] = (),
) -> dict[str, Any]:
    from vibelocal.config import load_settings
    from vibelocal.engine.llama.bench import BenchCase, copy_cases, run_bench, run_parallel_decode
    from vibelocal.placement.measured import memory_bandwidth_gbs, save_result, speed_key
    from vibelocal.placement.planner import plan_for_model
    from vibelocal.session import Session

    settings = load_settings({"model": ref})
    session = Session(settings)
    if session.remote:
        raise UsageError(
            "vibelocal bench measures this machine; unset backend (--backend / VIBELOCAL_BACKEND)"
        )
    installed = session.find_installed(ref)
    if installed is None:
        parsed = session.resolve(ref)
        raise ModelUnavailableError(
            f"model {parsed.display} is not installed", hint=f"run: vibelocal pull {parsed.raw}"
        )
    plan = plan_for_model(installed, session.spec_for(installed), session.hardware(), settings)
    limit = min(plan.n_ctx_train or MAX_DEPTH, MAX_DEPTH) - pp - tg - 8
    kept = tuple(d for d in depths if d <= limit)
    if len(kept) < len(depths):
        _note(
            f"depths over the model's context ({limit:,} usable) skipped: {[d for d in depths if d > limit]}"
        )
    cases = [BenchCase("pp", pp, 0), *(BenchCase("tg", 0, tg, d) for d in kept), *copy_cases(tg)]
    bandwidth = memory_bandwidth_gbs()
    rows = _with_progress(lambda on_step: run_bench(installed, plan, cases, repetitions=repetitions, on_step=on_step),
                          total=len(cases) * repetitions, quiet=as_json)  # fmt: skip
    batched: list[Any] = []
    if widths := sorted({1, *votes}) if max(votes, default=1) > 1 else []:  # what a batch of K tokens costs
        batched = _with_progress(lambda on_step: run_parallel_decode(installed, plan, tuple(widths), n_gen=tg,
                                 repetitions=repetitions, on_step=on_step),
                                 total=len(widths) * repetitions, quiet=as_json)  # fmt: skip
    result = _result(installed, plan, rows + batched[1:], bandwidth)
    if len(batched) > 1 and batched[0].avg_ts > 0:  # the gain of one batch over one sequence, same context
        for data, row in zip(result["results"][len(rows) :], batched[1:], strict=True):
            data["vs_one_sequence"] = round(row.avg_ts / batched[0].avg_ts, 2)
    if votes:
        result["votes"] = _vote_rows(session, installed, votes, tg, repetitions, quiet=as_json)
    if save:
        key = speed_key(
            installed, n_threads=plan.n_threads, n_gpu_layers=plan.n_gpu_layers, backend=plan.backend
        )
        where = save_result(session.paths, key, result)
        _note(f"stored in {where}: doctor, solve and the chat app now plan with these speeds")
    if not as_json:
        _print_table(result)
    return result


def _vote_rows(
    session: Any, installed: Any, ks: tuple[int, ...], tg: int, repetitions: int, *, quiet: bool
) -> list[dict[str, Any]]:
    """K samples side by side on the engine loaded for max(K) sequences; not measured where it cannot fork."""
    from vibelocal.cli.bench_votes import BENCH_PROMPT, bench_generation, not_measured, votes_rows
    from vibelocal.types import ChatMessage

    if not session.local_engine_forks():
        return not_measured(ks)
    try:
        engine = session.engine(model=installed, parallel=max(ks))
        messages = [ChatMessage("user", BENCH_PROMPT)]
        return _with_progress(  # type: ignore[no-any-return]
            lambda on_step: votes_rows(
                engine, messages, bench_generation(tg), ks, repetitions=repetitions, on_step=on_step
            ),
            total=len(ks) * repetitions,
            quiet=quiet,
        )
    finally:
        session.close()


def _result(installed: Any, plan: Any, rows: list[Any], bandwidth_gbs: float) -> dict[str, Any]:
    """The JSON object: plan, bandwidth, rows with the roofline each test could reach at most."""
    from vibelocal.models.gguf import read_gguf_info
    from vibelocal.placement.memory import shape_from_gguf

    shape = shape_from_gguf(read_gguf_info(installed.path))
    on_cpu = plan.n_gpu_layers == 0
    out_rows = []
    for row in rows:
        data = row.to_dict()
        if row.test == "tg" and on_cpu:  # a batch of n_seq tokens reads the weights once
            per_token = (shape.n_layers * shape.layer_bytes + shape.output_head_bytes) / row.n_seq
            per_token += shape.kv_bytes(max(row.n_depth, 1), plan.kv_cache_type, shape.n_layers)
            roofline = bandwidth_gbs * 1e9 / per_token
            data["roofline_ts"] = round(roofline, 2)
            data["roofline_pct"] = round(100 * row.avg_ts / roofline, 1)
            data["bytes_per_token"] = round(per_token)
        out_rows.append(data)
    return {
        "model": {"path": str(installed.path), "sha256": installed.sha256, "quant": installed.quant},
        "plan": {
            "backend": plan.backend,
            "n_threads": plan.n_threads,
            "n_gpu_layers": plan.n_gpu_layers,
            "n_batch": plan.n_batch,
            "kv_cache_type": plan.kv_cache_type,
            "flash_attn": plan.flash_attn,
        },
        "memory_bandwidth_gbs": round(bandwidth_gbs, 1),
        "results": out_rows,
        "planner_estimate_tok_s": plan.expected_decode_tok_s,
    }


def _with_progress(work: Any, *, total: int, quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return work(lambda step: None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("loading", total=total)
        seen = 0

        def on_step(step: str) -> None:
            nonlocal seen
            bar.update(task, description=step, completed=seen)
            seen += 1

        rows = work(on_step)
        bar.update(task, completed=total)
    return rows


def _print_table(result: dict[str, Any]) -> None:
    plan = result["plan"]
    print(
        f"{result['model']['quant'] or 'model'} on {plan['backend']}, {plan['n_threads']} threads, "
        f"{plan['n_gpu_layers']} GPU layers; memory bandwidth {result['memory_bandwidth_gbs']} GB/s (copy test)"
    )
    print(f"{'test':<16}{'t/s':>16}{'roofline':>12}{'reached':>10}")
    for row in result["results"]:
        speed = f"{row['avg_ts']:.2f} ± {row['stddev_ts']:.2f}"
        roof = f"{row['roofline_ts']:.1f}" if "roofline_ts" in row else "-"
        pct = f"{row['roofline_pct']:.0f}%" if "roofline_pct" in row else "-"
        print(f"{row['test']:<16}{speed:>16}{roof:>12}{pct:>10}")
    _print_speculation(result["results"])
    for row in result["results"]:
        if "vs_one_sequence" in row:
            print(
                f"a batch of {row['n_seq']} sequences decodes {row['vs_one_sequence']:.2f}x the tokens/s of one"
            )
    for row in result.get("votes", []):
        if "not_measured" in row:
            print(f"{row['test']:<16}  {row['not_measured']}")
            continue
        speed = f"{row['avg_ts']:.2f} ± {row['stddev_ts']:.2f}"
        ratio = (
            f"  {row['vs_sequential']:.2f}x the time of {row['n_seq']} in sequence"
            if row["vs_sequential"]
            else ""
        )
        print(f"{row['test']:<16}{speed:>16}  ({row['n_seq']} samples, {row['wall_s']:.1f} s){ratio}")
    if result["planner_estimate_tok_s"]:
        print(
            f"the planner had estimated {result['planner_estimate_tok_s']:.1f} tok/s half-way through an 8k trace"
        )


def _print_speculation(rows: list[dict[str, Any]]) -> None:
    """Below the table: what speculation gained on the copy trace, its acceptance, and whether it was lossless."""
    plain = next((r for r in rows if r["test"].startswith("copy") and "speculation" not in r), None)
    for row in rows:
        spec = row.get("speculation")
        if spec is None or plain is None or not plain["avg_ts"]:
            continue
        same = {True: "same tokens", False: "DIFFERENT tokens", None: "not compared"}[row["identical"]]
        print(
            f"speculation on the copy trace: {row['avg_ts'] / plain['avg_ts']:.2f}x, "
            f"{spec['accepted']} of {spec['drafted']} drafts accepted ({spec['acceptance_rate']:.0%}), {same}"
        )


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)
