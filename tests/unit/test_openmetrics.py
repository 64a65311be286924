"""The Nezha CSV → OpenMetrics converter used to backfill the real Prometheus in tests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.fakes.prometheus_server import (
    metric_pods,
    nezha_to_openmetrics,
    synthetic_nodes,
    text_seconds,
)
from thinkfl_operator.telemetry.nezha import NezhaStore
from thinkfl_operator.telemetry.prometheus import NEZHA_CATALOG, NEZHA_KPIS, nezha_metric_name

HEADER = "Time,TimeStamp,PodName,CpuUsageRate(%),PodClientLatencyP90(s)\n"


def write_pod(folder: Path, pod: str, rows: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{pod}_metric.csv").write_text(HEADER + "".join(r + "\n" for r in rows))


def sample_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.fixture
def converted(tmp_path: Path) -> str:
    metric = tmp_path / "metric"
    write_pod(metric, "ts-b-service-5dc8d4f9fd-aaaaa", [
        # out of order on purpose; the corrupt TimeStamp (ms, then garbage) must not be used
        "2023-01-30 11:41:53.12 +0000 UTC m=+120.1,1675078913000,x,3.5,0.25",
        "2023-01-30 11:39:53.99 +0000 UTC m=+0.4,1675078793,x,1.25,NaN",
        "2023-01-30 11:40:53.5 +0000 UTC m=+60.2,garbage,x,NaN,0.125",
        "2023-01-30 11:40:53.7 +0000 UTC m=+60.9,1675078853,x,99,99",  # same second: dropped
        "not a time,1675078973,x,4.0,0.5",  # falls back to TimeStamp
        "2023-01-30 11:43:53 +0000 UTC,0,x,5.0,",  # empty = missing
    ])
    write_pod(metric, "ts-a-service-6f94c49ccd-bbbbb", [
        "2023-01-30 11:39:52.1 +0000 UTC m=+0.1,1675078792,x,7.0,1e-05",
        "2023-01-30 13:40:52 +0200 EET,0,x,8.0,2.5",  # zone applied
    ])
    (metric / "front_service.csv").write_text("Time,TimeStamp,ServiceName\n")  # not a pod
    return nezha_to_openmetrics(metric, tmp_path / "out.om").read_text()


def test_metric_names_match_the_catalog() -> None:
    assert nezha_metric_name("CpuUsageRate(%)") == "nezha_cpu_usage_rate_percent"
    assert nezha_metric_name("PodClientLatencyP90(s)") == "nezha_pod_client_latency_p90_seconds"
    assert nezha_metric_name("MemoryUsage(Mi)") == "nezha_memory_usage_mebibytes"
    assert nezha_metric_name("NetworkReceiveBytes") == "nezha_network_receive_bytes"
    assert set(NEZHA_CATALOG) == set(NEZHA_KPIS)
    names = [nezha_metric_name(k) for k in NEZHA_KPIS]
    assert len(set(names)) == len(names)
    for kpi, name in zip(NEZHA_KPIS, names, strict=True):
        assert NEZHA_CATALOG[kpi] == name + '{pod=~"{pods}"}'


def test_families_are_grouped_and_end_with_eof(converted: str) -> None:
    lines = converted.splitlines()
    assert lines[-1] == "# EOF"
    assert converted.endswith("# EOF\n")
    families = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert families == ["nezha_cpu_usage_rate_percent", "nezha_pod_client_latency_p90_seconds",
                        "kube_pod_info"]
    assert all(line.split()[3] == "gauge" for line in lines if line.startswith("# TYPE"))
    seen: list[str] = []
    for line in sample_lines(converted):
        family = line.split("{")[0]
        if not seen or seen[-1] != family:
            assert family not in seen, "a family's samples must be contiguous"
            seen.append(family)


def test_samples_of_a_series_increase_in_time(converted: str) -> None:
    by_series: dict[str, list[int]] = {}
    for line in sample_lines(converted):
        series, _value, stamp = line.rsplit(" ", 2)
        by_series.setdefault(series, []).append(int(stamp))
    for stamps in by_series.values():
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    for stamps in by_series.values():
        assert all(1.6e9 < s < 1.7e9 for s in stamps), "seconds, not milliseconds"


def series_samples(text: str, prefix: str) -> dict[int, str]:
    return {int(line.rsplit(" ", 1)[1]): line.split(" ")[1]
            for line in sample_lines(text) if line.startswith(prefix)}


def test_text_time_wins_nan_is_skipped_first_row_of_a_second_kept(converted: str) -> None:
    pod = 'namespace="train-ticket",pod="ts-b-service-5dc8d4f9fd-aaaaa"}'
    assert series_samples(converted, "nezha_cpu_usage_rate_percent{" + pod) == {
        1675078793: "1.25", 1675078913: "3.5", 1675078973: "4.0", 1675079033: "5.0"}
    assert series_samples(converted, "nezha_pod_client_latency_p90_seconds{" + pod) == {
        1675078853: "0.125", 1675078913: "0.25", 1675078973: "0.5"}
    assert "99" not in converted.replace("1675078", "")
    assert series_samples(converted, 'nezha_cpu_usage_rate_percent{namespace="train-ticket",'
                                     'pod="ts-a-service-6f94c49ccd-bbbbb"}') == {
        1675078792: "7.0", 1675078852: "8.0"}


def assert_same_as_store(day: Path, text: str) -> None:
    store = NezhaStore(day)
    blocks = store.metrics(store.metric_pods(), 0, 2e9)
    assert sorted(blocks) == metric_pods(day / "metric")
    for pod, block in blocks.items():
        for j, kpi in enumerate(block.kpis):
            prefix = f'{nezha_metric_name(kpi)}{{namespace="train-ticket",pod="{pod}"}}'
            written = {t: float(v) for t, v in series_samples(text, prefix).items()}
            present = ~np.isnan(block.values[:, j])
            assert written == dict(zip(block.ts[present].astype(int).tolist(),
                                       block.values[present, j].tolist(), strict=True))


def test_same_samples_as_the_offline_store(tmp_path: Path) -> None:
    """What the converter writes is exactly what NezhaStore reads from the same files."""
    metric = tmp_path / "metric"
    write_pod(metric, "ts-b-service-5dc8d4f9fd-aaaaa", [
        "2023-01-30 11:41:53.12 +0000 UTC m=+120.1,1675078913000,x,3.5,0.25",
        "2023-01-30 11:39:53.99 +0000 UTC m=+0.4,1675078793,x,1.25,NaN",
        "2023-01-30 11:40:53.5 +0000 UTC m=+60.2,garbage,x,NaN,0.125",
        "2023-01-30 11:40:53.7 +0000 UTC m=+60.9,1675078853,x,99,99",
        "2023-01-30 13:43:53 +0200 EET,0,x,0.1,",
    ])
    write_pod(metric, "ts-a-service-6f94c49ccd-bbbbb", [
        "2023-01-30 11:39:52.1 +0000 UTC m=+0.1,1675078792,x,7.0,1e-05",
    ])
    text = nezha_to_openmetrics(metric, tmp_path / "out.om").read_text()
    assert_same_as_store(tmp_path, text)


def test_store_falls_back_to_timestamp_like_the_converter(tmp_path: Path, converted: str) -> None:
    assert_same_as_store(tmp_path, converted)


def test_kube_pod_info_gives_every_pod_a_node(converted: str, tmp_path: Path) -> None:
    pods = metric_pods(tmp_path / "metric")
    assert pods == ["ts-a-service-6f94c49ccd-bbbbb", "ts-b-service-5dc8d4f9fd-aaaaa"]
    assert synthetic_nodes(pods) == {pods[0]: "node-1", pods[1]: "node-2"}
    info = [line for line in sample_lines(converted) if line.startswith("kube_pod_info{")]
    assert info[0] == ('kube_pod_info{namespace="train-ticket",node="node-1",'
                       'pod="ts-a-service-6f94c49ccd-bbbbb"} 1 1675078792')
    assert sum('node="node-2"' in line for line in info) == 5  # one per sample time of the pod


def test_a_pod_filter_keeps_node_names(tmp_path: Path, converted: str) -> None:
    only_b = nezha_to_openmetrics(tmp_path / "metric", tmp_path / "b.om",
                                  pods=["ts-b-service-5dc8d4f9fd-aaaaa", "unknown"]).read_text()
    assert "bbbbb" not in only_b
    assert 'node="node-2",pod="ts-b-service-5dc8d4f9fd-aaaaa"' in only_b


def test_go_time_strings() -> None:
    assert text_seconds("2023-01-30 11:39:53.2587064 +0000 UTC m=+0.435") == 1675078793.0
    assert text_seconds("2023-01-30 13:39:53 +0200 EET") == 1675078793.0
    assert text_seconds("2023-01-30 06:39:53.5 -0500 EST") == 1675078793.0
    assert math.isnan(text_seconds("yesterday"))
    assert math.isnan(text_seconds("2023-02-30 11:39:53 +0000 UTC"))
