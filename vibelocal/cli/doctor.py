"""`vibelocal doctor`: what this machine (or a described one) is, and how the model would run on it, and why."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vibelocal.cli import options
from vibelocal.cli.output import escape_controls, print_json
from vibelocal.units import format_bytes

if TYPE_CHECKING:  # pydantic stays off the `--help` path
    from vibelocal.types import HardwareProfile, Plan

SCHEMA_VERSION = 1


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def build_report(
    *, hardware: Path | None = None, model: str | None = None, ctx: int | None = None, parallel: int = 1
) -> dict[str, Any]:
    """Everything doctor prints, as the documented `--json` object (docs/doctor.md); `parallel` plans for that
    many sequences side by side (`solve --votes K`, `serve --parallel N`)."""
    from vibelocal.config import load_settings
    from vibelocal.models.store import hf_cache_dir
    from vibelocal.placement.build import reinstall_commands
    from vibelocal.placement.planner import headline, make_plan, plan_for_model, quant_fits
    from vibelocal.placement.probe import probe
    from vibelocal.placement.profile import load_profile
    from vibelocal.session import Session

    settings = load_settings({"ctx": ctx, "model": model})
    hw = load_profile(hardware) if hardware is not None else probe()
    session = Session(settings, hardware=hw)
    parsed = session.resolve(settings.model)
    installed = session.find_installed(settings.model)
    spec = session.spec_for(installed) if installed is not None else parsed.spec
    warnings: list[str] = []
    plan: Plan | None = None
    if installed is not None:
        # this machine's plan uses the speed `vibelocal bench` measured here; a described machine's cannot
        plan = (
            plan_for_model(installed, spec, hw, settings, n_parallel=parallel)
            if hardware is not None
            else session.plan(installed, spec, parallel=parallel)
        )
        source = "file"
    elif spec is not None:
        plan = make_plan(spec, hw, settings, quant=parsed.quant, n_parallel=parallel)
        source = "manifest"
    else:
        source = "none"
        warnings.append(f"{parsed.display} is not downloaded and not in the catalog: no plan until it is")
    quants = [q.model_dump(mode="json") for q in quant_fits(spec, hw, settings)] if spec is not None else []
    advice = {g.backend: reinstall_commands(g.backend) for g in hw.gpus if not g.usable_by_build}
    plan_json = None
    if plan is not None:
        plan_json = plan.model_dump(mode="json")
        plan_json["memory"] = {
            "host_bytes": plan.host.total_bytes,
            "device_bytes": plan.device.total_bytes,
            "host": plan.host.model_dump(mode="json"),
            "device": plan.device.model_dump(mode="json"),
        }
        warnings = plan.warnings + warnings
        if plan.n_parallel > 1 and hardware is None and not session.local_engine_forks():
            warnings.append(
                "this build's engine decodes one sequence at a time: votes and serve requests run one after another"
            )
    return {
        "schema": SCHEMA_VERSION,
        "hardware": hw.model_dump(mode="json"),
        "models_dir": str(hf_cache_dir()),
        "model": {
            "ref": parsed.display,
            "name": spec.name if spec is not None else None,
            "installed": installed is not None,
            "path": str(installed.path) if installed is not None else None,
            "planned_from": source,
        },
        "summary": headline(plan) if plan is not None else None,
        "plan": plan_json,
        "quants": quants,
        "reasons": plan.reasons if plan is not None else [],
        "warnings": warnings,
        "reinstall": {k: v for k, v in advice.items() if v},
    }


def _hardware_lines(hw: HardwareProfile, models_dir: str) -> list[str]:
    cores = f"{hw.cpu_cores_physical} cores ({hw.cpu_cores_logical} threads)"
    feats = f"; {' '.join(hw.cpu_features)}" if hw.cpu_features else ""
    power = {None: "unknown (no battery found)", True: "on battery", False: "on AC power"}[hw.on_battery]
    lines = [
        f"Hardware ({'probed' if hw.source == 'probe' else 'from the profile file'})",
        f"  system   {hw.os} {hw.arch}",
        f"  CPU      {hw.cpu_name}, {cores}{feats}",
        f"  RAM      {format_bytes(hw.ram_total_bytes)} total, {format_bytes(hw.ram_available_bytes)} available",
    ]
    if hw.disk_free_bytes is not None:
        lines.append(f"  disk     {format_bytes(hw.disk_free_bytes)} free where models live ({models_dir})")
    lines.append(f"  power    {power}")
    if not hw.gpus:
        lines.append("  GPU      none")
    for g in hw.gpus:
        usable = "usable" if g.usable_by_build else "NOT usable by this build"
        kind = "unified memory" if g.unified_memory else "dedicated memory"
        lines.append(
            f"  GPU      {g.name} ({g.backend}, {kind}): {format_bytes(g.memory_free_bytes)} free of "
            f"{format_bytes(g.memory_total_bytes)}, {usable}"
        )
    lines.append(f"  llama.cpp build backends: {', '.join(hw.build_backends)}")
    return lines


def _plan_lines(report: dict[str, Any]) -> list[str]:
    m, p = report["model"], report["plan"]
    origin = {"file": "the file's own header", "manifest": "its manifest (not downloaded yet)"}.get(
        m["planned_from"], "nothing"
    )
    lines = ["", f"Model    {m['ref']}, planned from {origin}"]
    if p is None:
        return lines
    lines.insert(1, report["summary"])  # one plain sentence first; the details follow
    where = {
        "full_gpu": f"all on the GPU ({p['backend']})",
        "partial_gpu": f"all {p['n_layers']} layers on the GPU ({p['backend']}), the output head on the CPU"
        if p["n_gpu_layers"] >= p["n_layers"]
        else f"{p['n_gpu_layers']} of {p['n_layers']} layers on the GPU ({p['backend']})",
        "cpu": "on the CPU",
        "wont_fit": "does NOT fit",
    }[p["fit"]]
    h, d = p["host"], p["device"]
    lines += [
        f"Plan     {p['quant']} {where}, context {p['n_ctx']:,} tokens{_sequences(p)}, {p['n_threads']} threads, "
        f"flash attention {'on' if p['flash_attn'] else 'off'}, KV cache {p['kv_cache_type']}",
        f"  RAM    {format_bytes(p['memory']['host_bytes'])}: weights {format_bytes(h['weights_bytes'])}, KV cache "
        f"{format_bytes(h['kv_cache_bytes'])}, compute {format_bytes(h['compute_bytes'])}, overhead {format_bytes(h['overhead_bytes'])}; "
        f"{format_bytes(h['margin_bytes'])} kept free of {format_bytes(h['available_bytes'])} available",
    ]
    if h["reclaimable_bytes"]:
        lines.append(
            f"         ({format_bytes(h['reclaimable_bytes'])} of the weights are file pages llama.cpp copied into a faster "
            "layout; the OS can drop them)"
        )
    if p["memory"]["device_bytes"]:
        lines.append(
            f"  GPU    {format_bytes(p['memory']['device_bytes'])}: weights {format_bytes(d['weights_bytes'])}, KV cache "
            f"{format_bytes(d['kv_cache_bytes'])}, compute {format_bytes(d['compute_bytes'])}, runtime {format_bytes(d['overhead_bytes'])}; "
            f"{format_bytes(d['margin_bytes'])} kept free of {format_bytes(d['available_bytes'])} free"
        )
    if p["expected_decode_tok_s"]:
        lines.append(
            f"  speed  about {p['expected_decode_tok_s']:.1f} tokens/s; an 8k-token reasoning trace takes about "
            f"{_duration(p['expected_trace_s'])}"
        )
    lines.append("Why")
    lines += [f"  - {r}" for r in report["reasons"]]
    return lines


def _sequences(plan: dict[str, Any]) -> str:
    n = plan.get("n_parallel", 1)
    return f" x {n} sequences side by side" if n > 1 else ""


def _quant_lines(quants: list[dict[str, Any]]) -> list[str]:
    if not quants:
        return []
    tags = {"full_gpu": "full GPU", "partial_gpu": "partial GPU", "cpu": "CPU", "wont_fit": "won't fit"}
    lines = ["", "Quants   QUANT     SIZE      FIT          CONTEXT  TOK/S  8K TRACE"]
    for q in quants:
        speed = f"{q['expected_decode_tok_s']:.1f}" if q["expected_decode_tok_s"] else "-"
        lines.append(
            f"         {q['quant']:<9} {format_bytes(q['size_bytes']):>8}  {tags[q['fit']]:<11} {q['n_ctx']:>8,}  "
            f"{speed:>5}  {_duration(q['expected_trace_s']):>8}"
        )
    return lines


def render(report: dict[str, Any]) -> str:
    """The human-readable doctor output."""
    from vibelocal.types import HardwareProfile

    hw = HardwareProfile.model_validate(report["hardware"])
    lines = _hardware_lines(hw, report["models_dir"]) + _plan_lines(report) + _quant_lines(report["quants"])
    if report["warnings"]:
        lines += ["", "Warnings"] + [f"  ! {w}" for w in report["warnings"]]
    return escape_controls("\n".join(lines))  # names from a profile or a GGUF header reach the terminal


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        as_json: bool = typer.Option(
            False, "--json", help="Print the report as JSON (schema: docs/doctor.md)."
        ),
        hardware: Path | None = typer.Option(
            None,
            "--hardware",
            metavar="PROFILE.json",
            help="Plan for a described machine instead of this one.",
        ),
        model: str | None = options.MODEL,
        ctx: int | None = typer.Option(None, "--ctx", metavar="N", help="Wanted context length in tokens."),
        parallel: int = typer.Option(
            1,
            "--parallel",
            min=1,
            max=64,
            metavar="K",
            help="Plan for K sequences side by side (solve --votes K, serve --parallel K).",
        ),
        backend: str | None = typer.Option(
            None,
            "--reinstall-backend",
            metavar="BACKEND",
            help="Rebuild llama-cpp-python with cpu, cuda, metal or vulkan in the environment vibelocal runs in.",
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="With --reinstall-backend: print the command only."
        ),
    ) -> None:
        """Show this machine, the plan for the model (quant, GPU layers, context, threads) and why."""
        if backend is not None:
            from vibelocal.cli.backend import reinstall_backend

            raise typer.Exit(reinstall_backend(backend, dry_run=dry_run))
        report = build_report(hardware=hardware, model=model, ctx=ctx, parallel=parallel)
        if as_json:
            print_json(report)
        else:
            typer.echo(render(report))
