"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.prometheus_server import RealPrometheus, nezha_to_openmetrics, require_binaries
from tests.shared import shared_path

#: The TrainTicket day whose metrics are backfilled into ``prometheus_nezha_tt``.
NEZHA_TT_DAY = ("datasets", "nezha", "rca_data", "2023-01-30")


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
