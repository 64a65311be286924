"""The use case: pick an engine, diagnose one incident. Callers: the CLI now, the operator later."""

from __future__ import annotations

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.errors import UserInputError
from thinkfl_operator.core.models import ENGINES, FALLBACK_PREFIX, Diagnosis, Incident
from thinkfl_operator.engines.base import Engine
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.engines.thinkfl.client import ChatClient
from thinkfl_operator.engines.thinkfl.engine import ThinkFLEngine
from thinkfl_operator.observability import tracing
from thinkfl_operator.telemetry.store import Store


def make_engine(name: str, settings: Settings, chat: ChatClient | None = None) -> Engine:
    """The engine called ``name``. ``auto`` without an LLM endpoint is the deterministic engine
    (its fallback, said in the result's notes); ``thinkfl`` without one is a user error.
    ``chat``: a client of the endpoint to share (else the engine opens its own)."""
    if name == "heuristic":
        return HeuristicEngine(settings)
    if name in ("auto", "thinkfl"):
        if not settings.llm.base_url:
            if name == "auto":
                return _NoLLM(HeuristicEngine(settings))
            raise UserInputError("engine 'thinkfl' needs an LLM endpoint: give --llm-url "
                                 "(e.g. http://localhost:8000/v1) or set THINKFL_LLM__BASE_URL")
        return ThinkFLEngine(settings, auto=name == "auto", client=chat)
    raise UserInputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


class _NoLLM:
    """``auto`` with no endpoint configured: the deterministic engine, and a note saying so."""

    name = "auto"
    forkable = True

    def __init__(self, inner: HeuristicEngine) -> None:
        self.inner = inner

    def preload(self, store: Store, start_s: float, end_s: float) -> None:
        self.inner.preload(store, start_s, end_s)

    def diagnose(self, store: Store, incident: Incident) -> Diagnosis:
        result = self.inner.diagnose(store, incident)
        result.notes.insert(0, f"{FALLBACK_PREFIX} no LLM endpoint configured; the deterministic engine answered")
        return result


def diagnose(store: Store, incident: Incident, engine_name: str, settings: Settings,
             chat: ChatClient | None = None) -> Diagnosis:
    """Diagnose ``incident`` with engine ``engine_name``, inside a ``thinkfl.diagnose`` span;
    ``chat`` is a shared client of the LLM endpoint (without one, the engine's own is closed
    at the end)."""
    with tracing.span(tracing.DIAGNOSE, service=incident.service or None,
                      trace_id=incident.trace_id or None,
                      engine_asked=engine_name) as current:
        engine = make_engine(engine_name, settings, chat)
        try:
            result = engine.diagnose(store, incident)
        finally:
            close = getattr(engine, "close", None)
            if close is not None:
                close()
        current.set(**tracing.outcome(result))
    return result
