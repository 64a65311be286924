"""The use case: pick an engine, diagnose one incident. Callers: the CLI now, the operator later."""

from __future__ import annotations

from thinkfl_operator.engines.base import Engine
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.errors import UserInputError
from thinkfl_operator.models import Diagnosis, Incident
from thinkfl_operator.settings import Settings
from thinkfl_operator.telemetry.store import Store

ENGINES = ("auto", "heuristic", "thinkfl")


def make_engine(name: str, settings: Settings) -> Engine:
    """The engine called ``name``. Until an LLM endpoint is wired in, ``auto`` answers with the
    deterministic engine (its documented fallback) and ``thinkfl`` is refused."""
    if name in ("heuristic", "auto"):
        return HeuristicEngine(settings)
    if name == "thinkfl":
        raise UserInputError("engine 'thinkfl' needs an LLM endpoint, which this build cannot use yet; "
                             "use --engine heuristic or auto")
    raise UserInputError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def diagnose(store: Store, incident: Incident, engine_name: str, settings: Settings) -> Diagnosis:
    engine = make_engine(engine_name, settings)
    result = engine.diagnose(store, incident)
    if engine_name == "auto" and result.engine == "heuristic":
        result.notes.insert(0, "engine auto: no LLM endpoint configured, the deterministic engine answered")
    return result
