"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
import pytest_asyncio

from tests.fakes.prometheus_server import RealPrometheus, nezha_to_openmetrics, require_binaries
from tests.shared import NEZHA_TT_DAY, shared_path
from thinkfl_operator.evaluation.labels import Fault, read_faults
from thinkfl_operator.kube.sandbox import Emulator, emulator
from thinkfl_operator.telemetry.nezha import NezhaStore


@pytest.fixture(scope="session")
def nezha_tt_faults() -> list[Fault]:
    """The labeled faults of TT 2023-01-30."""
    return read_faults(shared_path(*NEZHA_TT_DAY))


@pytest.fixture(scope="session")
def nezha_tt_spans() -> pd.DataFrame:
    """Every span of TT 2023-01-30, as the offline store reads them (served by the trace
    API stand-ins)."""
    return NezhaStore(shared_path(*NEZHA_TT_DAY)).spans_between(0, 2**62).frame


@pytest.fixture(scope="session")
def prometheus_nezha_tt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealPrometheus]:
    """A real Prometheus holding every TT 2023-01-30 pod's KPIs (``NEZHA_CATALOG`` names)."""
    metric_dir = shared_path(*NEZHA_TT_DAY, "metric")
    require_binaries()
    workdir = tmp_path_factory.mktemp("prometheus-nezha-tt")
    source = nezha_to_openmetrics(metric_dir, workdir / "nezha-tt.om")
    with RealPrometheus(source, workdir=workdir / "server") as server:
        source.unlink()  # ~80 MB, no longer needed once the blocks are written
        yield server


class Recording(Emulator):
    """kmock's emulator as an API server behaves (uids, resource versions; see ``Emulator``),
    keeping every request it served for the tests that read them back (RBAC)."""

    keep_requests = True


@pytest_asyncio.fixture
async def api() -> AsyncIterator[Any]:
    """A Kubernetes API on 127.0.0.1 that knows FailureIncidents (and the built-in kinds)."""
    async with emulator(Recording) as served:
        yield served
