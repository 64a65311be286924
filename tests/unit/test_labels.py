"""Fault labels: Nezha fault lists (inject_time as UTC) and AIOps groundtruth.csv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.shared import shared_path
from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.evaluation.labels import Fault, read_faults


@pytest.mark.shared_data
def test_trainticket_day_in_file_order_with_utc_inject_time() -> None:
    faults = read_faults(shared_path("datasets", "nezha", "rca_data", "2023-01-30"))
    assert len(faults) == 17
    assert faults[0] == Fault(
        time_s=1675079506.0,
        time_text="2023-01-30 11:51:46",
        pod="ts-contacts-service-866bd68c97-dzqgd",
        service="ts-contacts-service",
        fault_type="network_delay",
        level="pod",
    )
    assert faults[1].time_text == "2023-01-30 11:59:21"  # second entry of hour "11"
    times = [f.time_s for f in faults]
    assert times == sorted(times)
    assert {f.fault_type for f in faults} == {"network_delay", "cpu_contention"}


@pytest.mark.shared_data
def test_onlineboutique_day_has_32_faults() -> None:
    faults = read_faults(shared_path("datasets", "nezha", "rca_data", "2022-08-23"))
    assert len(faults) == 32
    assert all(f.level == "pod" and f.service and f.pod.startswith(f.service) for f in faults)


@pytest.mark.shared_data
def test_aiops_groundtruth_is_one_service_fault() -> None:
    faults = read_faults(shared_path("datasets", "rclagent-v2-sample", "sample_data"))
    assert len(faults) == 1
    fault = faults[0]
    assert (fault.level, fault.service, fault.pod) == ("service", "recommendationservice", "")
    assert fault.time_s == 1647747326.0 and fault.time_text == "1647747326"


def _fault_list(tmp_path: Path, text: str) -> Path:
    day = tmp_path / "2023-01-30"
    day.mkdir()
    (day / "2023-01-30-fault_list.json").write_text(text)
    return day


def _entry(**overrides: str) -> dict[str, str]:
    entry = {
        "inject_time": "2023-01-30 11:51:46",
        "inject_timestamp": "1675000000",  # deliberately wrong: must be ignored
        "inject_pod": "ts-foo-service-5dc8d4f9fd-llznp",
        "inject_type": "cpu_contention",
    }
    entry.update(overrides)
    return entry


def test_inject_timestamp_is_ignored_and_hour_order_kept(tmp_path: Path) -> None:
    data = {"12": [_entry(inject_time="2023-01-30 12:00:00")], "11": [_entry(), _entry()]}
    faults = read_faults(_fault_list(tmp_path, json.dumps(data)))
    assert [f.time_text[11:13] for f in faults] == ["12", "11", "11"]  # file order, not sorted
    assert faults[1].time_s == 1675079506.0
    assert faults[0].service == "ts-foo-service"


def test_aiops_pod_and_node_levels(tmp_path: Path) -> None:
    (tmp_path / "groundtruth.csv").write_text(
        "timestamp,level,cmdb_id,failure_type\n"
        "1647747326,pod,cartservice2-0,cpu\n"
        "1647747400000,node,node-6,disk\n"
    )
    pod, node = read_faults(tmp_path)
    assert (pod.pod, pod.service, pod.level) == ("cartservice2-0", "cartservice", "pod")
    assert (node.level, node.node, node.pod, node.service) == ("node", "node-6", "", "")
    assert node.time_s == 1647747400.0


def test_no_label_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no \\*fault_list.json or groundtruth.csv label file"):
        read_faults(tmp_path)


def test_several_label_files(tmp_path: Path) -> None:
    (tmp_path / "a-fault_list.json").write_text("{}")
    (tmp_path / "b-fault_list.json").write_text("{}")
    with pytest.raises(DatasetError, match=r"several label files \(a-fault_list.json, b-"):
        read_faults(tmp_path)


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    day = _fault_list(tmp_path, '{\n  "11": [\n    {"inject_time": }\n  ]\n}\n')
    with pytest.raises(DatasetError) as err:
        read_faults(day)
    message = str(err.value)
    assert "2023-01-30-fault_list.json" in message and "line 3 column" in message
    assert "\n" not in message


@pytest.mark.parametrize("missing", ["inject_time", "inject_pod"])
def test_entry_missing_field_names_hour_and_index(tmp_path: Path, missing: str) -> None:
    second = _entry()
    del second[missing]
    day = _fault_list(tmp_path, json.dumps({"11": [_entry(), second]}))
    expected = rf"fault_list\.json: hour '11' entry 1 has no {missing}"
    with pytest.raises(DatasetError, match=expected):
        read_faults(day)


def test_bad_time_value(tmp_path: Path) -> None:
    day = _fault_list(tmp_path, json.dumps({"11": [_entry(inject_time="2023-13-01 11:51:46")]}))
    with pytest.raises(DatasetError) as err:
        read_faults(day)
    assert "2023-01-30-fault_list.json" in str(err.value)
    assert (
        "inject_time '2023-13-01 11:51:46' is not a time like 2023-01-30 11:51:46" in str(err.value)
    )


def test_bad_groundtruth_rows_name_file(tmp_path: Path) -> None:
    gt = tmp_path / "groundtruth.csv"
    gt.write_text("timestamp,level,cmdb_id,failure_type\nyesterday,pod,frontend-0,cpu\n")
    with pytest.raises(DatasetError, match=r"groundtruth\.csv: line 2: timestamp 'yesterday'"):
        read_faults(tmp_path)
    gt.write_text("timestamp,level,cmdb_id,failure_type\n1647747326,cluster,x,cpu\n")
    with pytest.raises(DatasetError, match=r"groundtruth\.csv: line 2: level 'cluster'"):
        read_faults(tmp_path)
    gt.write_text("timestamp,level,cmdb_id\n1647747326,pod,x\n")
    with pytest.raises(DatasetError, match=r"groundtruth\.csv: missing column\(s\) failure_type"):
        read_faults(tmp_path)
