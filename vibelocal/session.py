"""The facade every front end uses: resolve and fetch a model, plan, load, and stream turns."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vibelocal.config import BudgetSpec, Settings, parse_budget
from vibelocal.engine.contract import ChatEngine
from vibelocal.engine.control import TurnControl
from vibelocal.errors import EngineBusyError, ModelUnavailableError, UnknownModelError
from vibelocal.models.catalog import Catalog, ModelRef, parse_ref
from vibelocal.paths import Paths, get_paths
from vibelocal.types import (
    ChatMessage,
    GenerationSettings,
    HardwareProfile,
    InstalledModel,
    ModelSpec,
    Plan,
    StreamEvent,
)

if TYPE_CHECKING:
    from vibelocal.models.store import Registry

EngineLoader = Callable[[InstalledModel, Plan, "ModelSpec | None"], ChatEngine]


class Session:
    """One user's view of vibelocal: settings, catalog, installed models, hardware, at most one loaded engine.

    `engine_loader` and `hardware` can be injected (tests inject a scripted engine or a profile file);
    `loader_forks` says whether an injected loader's engines decode several sequences at once (`fork()`).
    While a turn streamed through `stream()` runs, `engine()` refuses to switch to another model
    (`EngineBusyError`): the loaded engine is never closed under a running turn. `close()` is the one
    deliberate exception: it cancels the turn and the engine waits for it before freeing.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        paths: Paths | None = None,
        catalog: Catalog | None = None,
        engine_loader: EngineLoader | None = None,
        hardware: HardwareProfile | None = None,
        on_status: Callable[[str], None] | None = None,
        loader_forks: bool = False,
    ) -> None:
        self.settings = settings or Settings()
        self._loader_forks = loader_forks
        self.paths = paths or get_paths()
        self.catalog = catalog or Catalog(extra_dirs=[self.paths.config_dir / "models"])
        self._engine_loader = engine_loader
        self._hardware = hardware
        self._on_status = on_status
        self._engine: ChatEngine | None = None
        self._engine_key: tuple[str, str] | None = None
        self._engine_parallel = 1
        self.model: InstalledModel | None = None
        self.spec: ModelSpec | None = None
        self.plan_used: Plan | None = None
        self._turns = 0
        self._turns_lock = threading.Lock()

    # ------------------------------------------------------------------ models

    def resolve(self, ref: str | None = None) -> ModelRef:
        """What `ref` names: a catalog alias, a hub ref, a path, or the name of a GGUF added with `models add`."""
        try:
            return parse_ref(ref or self.settings.model, self.catalog)
        except UnknownModelError:
            local = self.registry().find_local(ref or self.settings.model)
            if local is None:
                raise
            return ModelRef(raw=ref or self.settings.model, kind="path", path=local.path)

    def registry(self) -> Registry:
        from vibelocal.models.store import Registry

        return Registry(self.paths)

    def installed(self) -> list[InstalledModel]:
        return self.registry().list()

    def find_installed(self, ref: str | None = None) -> InstalledModel | None:
        """The verified model a reference names, or None. A path is checked as a GGUF file."""
        parsed = self.resolve(ref)
        if parsed.kind == "path":
            from vibelocal.models.store import model_from_path

            checked = model_from_path(parsed.path)  # type: ignore[arg-type]
            return self.registry().find(parsed) or checked  # added with `models add`: named and hashed
        # No quant named: any installed quant of that model (the registry prefers the manifest default).
        return self.registry().find(parsed, quant=parsed.quant or self.settings.quant)

    def pull(
        self,
        ref: str | None = None,
        *,
        progress: Callable[[Any], None] | None = None,
        cancel: Any = None,
        quant: str | None = None,
    ) -> InstalledModel:
        """Download (or find in the hub cache) and verify a model; the planner picks the quant when none is named."""
        from vibelocal.models import download

        parsed = self.resolve(ref)
        if quant is None:
            quant, _why = self.pull_quant(parsed)
        return download.pull(
            parsed,
            quant=quant,
            paths=self.paths,
            offline=self.settings.offline,
            progress=progress,
            cancel=cancel,
        )

    def pull_quant(self, parsed: ModelRef) -> tuple[str | None, str | None]:
        """The quant a pull of `parsed` fetches, and why; (None, None) when the reference names a file."""
        if parsed.kind in ("path", "hub_file"):
            return parsed.quant, None
        if parsed.quant:
            return parsed.quant, None
        if self.settings.quant:
            return self.settings.quant, "set by the `quant` setting"
        spec = parsed.spec
        if spec is None:
            return None, None  # an unknown hub repo: its Q4_K_M file, or its only one
        from vibelocal.placement.planner import headline, make_plan

        plan = make_plan(spec, self.hardware(), self.settings)
        if plan.fits:
            return plan.quant, headline(plan).split(": ", 1)[1]
        sizes = {q: f.size_bytes for q in spec.quants if (f := spec.quant_file(q))}
        smallest = min(sizes, key=sizes.__getitem__) if sizes else spec.default_quant
        why = plan.reasons[0] if plan.reasons else "not enough memory"
        return smallest, f"no quant fits this machine ({why}); fetching the smallest anyway"

    def spec_for(self, model: InstalledModel) -> ModelSpec | None:
        if model.name and (spec := self.catalog.get(model.name)):
            return spec
        if model.repo and (spec := self.catalog.spec_for_repo(model.repo)):
            return spec
        hit = self.catalog.spec_for_file(model.path.name)
        return hit[0] if hit else None

    # ------------------------------------------------------------------ hardware and plan

    def hardware(self) -> HardwareProfile:
        if self._hardware is None:
            from vibelocal.placement.probe import probe

            self._hardware = probe(self.paths)
        return self._hardware

    def plan(self, model: InstalledModel, spec: ModelSpec | None, *, parallel: int = 1) -> Plan:
        """The planner's choice for `model` (for `parallel` sequences side by side, or as many as fit), with
        the speed `vibelocal bench` measured here when there is one."""
        from vibelocal.placement.measured import load_speed, speed_key
        from vibelocal.placement.planner import apply_measured, plan_for_model

        plan = plan_for_model(model, spec, self.hardware(), self.settings, n_parallel=parallel)
        key = speed_key(model, n_threads=plan.n_threads, n_gpu_layers=plan.n_gpu_layers, backend=plan.backend)
        return apply_measured(plan, load_speed(self.paths, key))

    # ------------------------------------------------------------------ engine

    @property
    def remote(self) -> bool:
        """Turns run on a server (`backend` is set), not on a model of this machine."""
        return bool(self.settings.backend)

    def remote_engine(self) -> ChatEngine:
        """Connect (once) to the `backend` server; its kind is detected. BackendError (exit 4) when it is down."""
        key = ("remote", repr((self.settings.backend, self.settings.api_key)))
        if self._engine is not None and self._engine_key == key:
            return self._engine
        from vibelocal.engine.remote import connect

        self.close()
        parsed = self.resolve(None)
        spec = parsed.spec
        self._engine = connect(
            self.settings.backend or "",
            api_key=self.settings.api_key,
            chat=spec.chat if spec else None,
            model_name=spec.name if spec else None,
        )
        self._engine_key = key
        self.model, self.spec, self.plan_used = None, spec, None
        return self._engine

    def engine(
        self, ref: str | None = None, *, model: InstalledModel | None = None, parallel: int = 1
    ) -> ChatEngine:
        """Load (once) and return the engine for `ref` or the default model; raises when it is not installed.
        With a `backend` server set, the server's engine.

        `parallel` > 1 asks for that many sequences side by side (`--votes K`, `serve --parallel N`): the plan
        sizes the KV cache for them, or for as many as fit, and says why. An engine that cannot decode several
        sequences at once is planned (and loaded) for one; the front ends then run the turns one after another."""
        if self.remote:
            return self.remote_engine()
        model = model or self.find_installed(ref)
        if model is None:
            parsed = self.resolve(ref)
            raise ModelUnavailableError(
                f"model {parsed.display} is not installed",
                hint=f"run: vibelocal pull {parsed.raw}",
            )
        n_parallel = parallel if parallel > 1 and self.local_engine_forks() else 1
        key = (str(model.path), self._load_key())
        if self._engine is not None and self._engine_key == key and n_parallel <= self._engine_parallel:
            return self._engine
        if self.busy:
            raise EngineBusyError(
                f"cannot switch to {model.label} while a reply is streaming",
                hint="stop the reply first, or wait for it to end",
            )
        self.close()
        spec = self.spec_for(model)
        plan = self.plan(model, spec, parallel=n_parallel)
        if plan.n_parallel < n_parallel and self._on_status is not None:
            self._on_status(
                f"{plan.n_parallel} of {n_parallel} sequences fit side by side in memory "
                f"(vibelocal doctor --parallel {n_parallel} says why)"
            )
        loader = self._engine_loader
        if loader is None:
            from vibelocal.engine.llama import load

            def loader(m: InstalledModel, p: Plan, s: ModelSpec | None) -> ChatEngine:
                return load(m, p, s, on_status=self._on_status)

        self._engine = loader(model, plan, spec)
        self._engine_key, self._engine_parallel = key, n_parallel
        self.model, self.spec, self.plan_used = model, spec, plan
        return self._engine

    def _load_key(self) -> str:
        """The settings that change how a model is loaded; sampler and budget changes need no reload (nor does
        asking for fewer parallel sequences than the engine was loaded with)."""
        s = self.settings
        return repr((s.quant, s.ctx, s.kv_cache_type, s.n_gpu_layers, s.threads))

    def local_engine_forks(self) -> bool:
        """Whether the local engine decodes several sequences of one context at once (it has `fork()`)."""
        if self._engine_loader is not None:
            return self._loader_forks
        from vibelocal.engine.llama import LlamaEngine

        return callable(getattr(LlamaEngine, "fork", None))

    @property
    def busy(self) -> bool:
        """True while a turn streamed through `stream()` has not ended (or been closed by its consumer)."""
        return self._turns > 0

    def close(self) -> bool:
        """Unload the engine: a running turn is cancelled and waited for (bounded) before the model is freed.
        True when everything stopped in time (engines without that report count as stopped)."""
        engine, self._engine, self._engine_key = self._engine, None, None
        if engine is None:
            return True
        return engine.close() is not False

    # ------------------------------------------------------------------ turns

    def budget(self, override: str | None = None) -> BudgetSpec:
        return parse_budget(override if override is not None else self.settings.budget)

    def generation_settings(
        self,
        *,
        budget: BudgetSpec | None = None,
        spec: ModelSpec | None = None,
        force_boxed: bool = False,
        seed: int | None = None,
    ) -> GenerationSettings:
        """Manifest sampling defaults, overridden by settings; the budget in tokens or seconds."""
        spec = spec or self.spec
        s = self.settings
        sampling = spec.sampling if spec else None
        budget = budget or self.budget()
        prefill = s.prefill_think if s.prefill_think is not None else bool(spec and spec.chat.prefill_think)
        return GenerationSettings(
            temperature=s.temperature
            if s.temperature is not None
            else (sampling.temperature if sampling else 0.6),
            top_p=s.top_p if s.top_p is not None else (sampling.top_p if sampling else 0.95),
            top_k=s.top_k if s.top_k is not None else (sampling.top_k if sampling else 0),
            min_p=sampling.min_p if sampling else 0.0,
            repeat_penalty=sampling.repeat_penalty if sampling else 1.0,
            seed=seed if seed is not None else s.seed,
            max_thinking_tokens=budget.tokens,
            thinking_time_s=budget.seconds,
            min_thinking_tokens=s.min_thinking,
            max_answer_tokens=s.answer_budget,
            prefill_think=prefill,
            loop_detection=s.loop_detection,
            force_boxed=force_boxed,
        )

    def stream(
        self,
        messages: Sequence[ChatMessage],
        settings: GenerationSettings,
        control: TurnControl | None = None,
        *,
        ref: str | None = None,
    ) -> Iterator[StreamEvent]:
        """One assistant turn on the loaded (or default) model; the session is busy until it ends."""
        events = self.engine(ref).stream(messages, settings, control)
        with self._turns_lock:
            self._turns += 1
        return _TrackedTurn(events, self._turn_ended)

    def _turn_ended(self) -> None:
        with self._turns_lock:
            self._turns -= 1


class _TrackedTurn:
    """A turn's events, calling `on_end` once when they run out, fail, or the consumer closes them."""

    def __init__(self, events: Iterator[StreamEvent], on_end: Callable[[], None]) -> None:
        self._events, self._on_end = events, on_end
        self._open = True

    def __iter__(self) -> _TrackedTurn:
        return self

    def __next__(self) -> StreamEvent:
        try:
            return next(self._events)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                close = getattr(self._events, "close", None)
                if close is not None:
                    close()
            finally:
                self._on_end()

    def __del__(self) -> None:
        self.close()
