"""Log evidence: Nezha log files read defensively, templates, template-mix shifts, and fusion."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.shared import shared_path
from thinkfl_operator.core.models import Candidate
from thinkfl_operator.engines.heuristic.fusion import fuse, log_lead
from thinkfl_operator.engines.heuristic.resources import CpuShift
from thinkfl_operator.evidence.logshift import log_lines, log_shifts
from thinkfl_operator.evidence.templates import levels, templates
from thinkfl_operator.telemetry.loglines import LogBatch, covered_seconds, merge_coverage
from thinkfl_operator.telemetry.nezha_logs import NezhaLogs

T0 = 1_700_000_000.0
HEADER = ["Timestamp", "TimeUnixNano", "Node", "PodName", "Container", "TraceID", "SpanID", "Log"]


def _docker(line: str) -> str:
    return json.dumps({"log": line + "\n", "stream": "stdout", "time": "x"})


def _write(path: Path, rows: list[list[str]], raw_tail: str = "") -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
        fh.write(raw_tail)


def _row(t: float, pod: str, line: str) -> list[str]:
    return ["", str(int(t * 1e9)), "n1", pod, "server", "ab" * 16, "cd" * 8, _docker(line)]


def test_templates_mask_ids_numbers_and_clocks_but_keep_the_statement() -> None:
    lines = pd.Series([
        ("17:03:11.532 INFO  v.c.VerifyCodeController#54 TraceID: 0af7651916cd43dd8448eb211c80319c "
        "SpanID: b7ad6b7169203331 [verifyCode][verify result: false]"),
        ("17:04:12.001 INFO  v.c.VerifyCodeController#54 TraceID: 1af7651916cd43dd8448eb211c80319c "
        "SpanID: c7ad6b7169203331 [verifyCode][verify result: true]"),
        "2023-01-29T09:02:12Z ERROR order 4f1b2c3d-aaaa-bbbb-cccc-1234567890ab failed after 32 ms",
    ])
    found = templates(lines)
    assert found[0] == found[1]
    assert "VerifyCodeController#54" in found[0] and "TraceID" not in found[0]
    assert "4f1b2c3d" not in found[2] and "32" not in found[2]
    assert list(levels(lines)) == ["INFO", "INFO", "ERROR"]


def test_nezha_logs_skip_broken_rows_and_drop_repeats(tmp_path: Path) -> None:
    day = tmp_path / "day"  # no date in the name: every file may hold any time
    (day / "log").mkdir(parents=True)
    rows = [_row(T0 + i, "svc-a-5dc8d4f9fd-llznp", f"INFO A#1 step {i}") for i in range(20)]
    # A record spliced into another (too many fields), and a time that is not a number.
    _write(day / "log" / "09_03_log.csv", rows, raw_tail='x,1,2,3,4,5,6,7,8,9\nx,notatime,n,p,c,t,s,"{}"\n')
    _write(day / "log" / "09_04_log.csv", rows[10:])  # overlaps the first file
    source = NezhaLogs(day / "log")
    batch = source.logs(T0 - 60, T0 + 60)
    assert len(batch.lines) == 20
    assert list(batch.lines["service"].unique()) == ["svc-a"]
    assert batch.lines["line"].iloc[0] == "INFO A#1 step 0"
    skipped = dict(source.quality.skipped)
    assert skipped["broken log rows (wrong number of fields)"] == 1
    assert skipped["log rows without a time"] == 1
    assert skipped["repeated log lines"] == 10
    assert covered_seconds(batch.coverage, T0, T0 + 19) == pytest.approx(19.0)


@pytest.mark.shared_data
def test_the_real_spliced_record_is_skipped_and_counted() -> None:
    day = shared_path("datasets", "nezha", "rca_data", "2023-01-29")
    source = NezhaLogs(day / "log")
    batch = source.logs(1674986700.0, 1674986820.0)  # the minutes of 10_06_log.csv
    assert len(batch.lines) > 1000
    assert source.quality.skipped["broken log rows (wrong number of fields)"] >= 1


def _batch(rows: list[tuple[float, str, str]]) -> LogBatch:
    frame = pd.DataFrame({"time_ns": np.array([int(t * 1e9) for t, _, _ in rows], dtype="int64"),
                          "pod": [f"{s}-5dc8d4f9fd-llznp" for _, s, _ in rows],
                          "service": [s for _, s, _ in rows], "line": [x for _, _, x in rows],
                          "trace_id": "", "span_id": ""})
    return LogBatch(lines=frame.sort_values("time_ns").reset_index(drop=True),
                    coverage=merge_coverage([(T0 - 1200, T0 + 180)]))


def _steady(service: str, start: float, end: float, lines: list[str]) -> list[tuple[float, str, str]]:
    return [(t, service, line) for t in np.arange(start, end, 2.0) for line in lines]


def test_a_vanished_line_and_a_new_error_are_found_and_described() -> None:
    history = _steady("route", T0 - 1200, T0 - 60, ["INFO RouteController#47 query", "INFO RouteController#53 query list"])
    history += _steady("seat", T0 - 1200, T0 - 60, ["INFO SeatController#57 left tickets"])
    window = _steady("route", T0, T0 + 120, ["INFO RouteController#47 query"])  # #53 vanished
    window += _steady("seat", T0, T0 + 120, ["INFO SeatController#57 left tickets"])
    window += _steady("basic", T0, T0 + 120, ["INFO Basic#1 fine"])
    window += [(T0 + i, "seat", "ERROR SeatServiceImpl#99 No contacts according to contactsId 7")
               for i in range(0, 120, 6)]
    evidence = log_shifts(_batch(history + window), (T0, T0 + 120), (T0 - 1200, T0 - 60))
    route = evidence.services["route"]
    vanished = next(s for s in route.shifts if "#53" in s.template)
    assert vanished.during_per_min == 0 and vanished.before_per_min == pytest.approx(30, rel=0.05)
    assert "vanished template `RouteController#53 query list` 30 → 0 per minute" in route.reason()
    seat = evidence.services["seat"]
    assert seat.reason().startswith("new ERROR `SeatServiceImpl#99 No contacts` 0 → 10 per minute")
    assert "basic" not in [s.service for s in evidence.ranked()[:2]]  # new to the window: no history
    assert log_lines(evidence)[0].startswith(("route:", "seat:"))


def test_a_load_change_alone_is_no_log_anomaly() -> None:
    lines = ["INFO A#1 start", "INFO A#2 done"]
    history = _steady("a", T0 - 1200, T0 - 60, lines)
    window = [(t, "a", line) for t in np.arange(T0, T0 + 120, 0.5) for line in lines]  # 4x the load
    evidence = log_shifts(_batch(history + window), (T0, T0 + 120), (T0 - 1200, T0 - 60))
    assert evidence.services["a"].score < 3.0
    assert evidence.services["a"].shifts == []


def test_fusion_lets_the_source_that_sees_the_fault_lead() -> None:
    history = _steady("route", T0 - 1200, T0 - 60, ["INFO R#47 q", "INFO R#53 list"])
    for other in ("a", "b", "c", "d"):
        history += _steady(other, T0 - 1200, T0 - 60, ["INFO X#1 y"])
    window = _steady("route", T0, T0 + 120, ["INFO R#47 q"])
    for other in ("a", "b", "c", "d"):
        window += _steady(other, T0, T0 + 120, ["INFO X#1 y"])
    logs = log_shifts(_batch(history + window), (T0, T0 + 120), (T0 - 1200, T0 - 60))
    # Trace noise on an unrelated service loses to a strong log shift …
    noisy = [Candidate(service="a", pod="a-1", reason="own time 1 ms → 2 ms", score=3.0)]
    ranked = fuse(noisy, logs, {})
    assert ranked[0].service == "route" and "vanished template" in ranked[0].reason
    assert log_lead(ranked, logs) == "route"
    # … a clear trace shift keeps its place over the same log shift …
    clear = [Candidate(service="a", pod="a-1", reason="calls wait 1 ms → 200 ms", score=12.0)]
    assert fuse(clear, logs, {})[0].service == "a"
    # … and a CPU shift far outside the pod's history wins on CPU.
    cpu = {"b": CpuShift("b-1", "b", "CpuUsageRate(%)", 5.0, 95.0, 180.0)}
    top = fuse(noisy, logs, cpu)[0]
    assert top.service == "b" and top.pod == "b-1" and "CpuUsageRate(%) 5.00 → 95.00" in top.reason


def test_a_flood_a_huge_line_and_binary_junk_cost_bounded_memory_and_say_so(tmp_path: Path) -> None:
    folder = tmp_path / "day" / "log"
    folder.mkdir(parents=True)
    pod = "svc-a-5dc8d4f9fd-llznp"
    normal = [_row(T0 + i, pod, f"INFO A#1 step {i}") for i in range(30)]
    normal.append(_row(T0 + 31, pod, "INFO A#2 " + "x" * (1 << 20)))  # a 1 MiB line
    normal.append(_row(T0 + 32, pod, "\x00\x01\ufffd\x7f binary \x1b[31m junk"))
    _write(folder / "09_03_log.csv", normal)
    flood = [_row(T0 + 120 + i / 1000, pod, "ERROR flood") for i in range(5000)]
    _write(folder / "09_05_log.csv", flood)
    source = NezhaLogs(folder, max_file_lines=1000)
    batch = source.logs(T0 - 60, T0 + 600)
    assert len(batch.lines) == 32
    assert batch.lines["line"].str.len().max() <= 2000
    notes = source.quality.notes()
    assert any("more than 1000 lines (left out: 09_05_log.csv)" in n for n in notes)
    assert any("characters past 2000 of long log lines" in n for n in notes)
    assert covered_seconds(batch.coverage, T0 + 100, T0 + 600) == 0  # the flood is no coverage


def test_a_line_that_falls_with_its_calls_is_traffic_not_a_fault() -> None:
    """A caller stopped calling ``list``: the callee's ``list`` lines fall with its spans (no
    shift once weighed by traffic), while ``get`` calls go on and its ``#53`` line vanished."""
    from thinkfl_operator.engines.heuristic.traffic import (
        OperationCalls,
        template_operations,
        template_traffic,
    )

    spans, rows = [], []
    for i, t in enumerate(np.arange(T0 - 1200, T0 + 120, 2.0)):
        calls = [("get", "INFO C#47 get"), ("get", "INFO C#53 got")]
        if t < T0 or i % 4 == 0:  # `list` calls drop to a quarter in the window
            calls += [("list", "INFO C#60 list"), ("list", "INFO C#61 listed")]
        for n, (operation, line) in enumerate(calls):
            span = f"{i:08x}{n // 2:08x}"
            if not (operation == "get" and "#53" in line and t >= T0):  # #53 vanishes
                rows.append((t, "callee", line, span))
            if n % 2 == 0:
                spans.append({"span_id": span, "service": "callee", "operation": operation,
                              "start_us": int(t * 1e6)})
    batch = _batch([(t, s, line) for t, s, line, _ in rows])
    batch.lines["span_id"] = [sp for _, _, _, sp in sorted(rows, key=lambda r: r[0])]
    lines = batch.lines.assign(template=templates(batch.lines["line"]))
    window, history = (T0, T0 + 120), (T0 - 1200, T0 - 60)
    frame = pd.DataFrame(spans)
    traffic = template_traffic(OperationCalls(frame), template_operations(frame, lines), window, history)
    assert traffic[("callee", "INFO C#60 list")] == pytest.approx(0.25, rel=0.2)
    weighed = log_shifts(replace(batch, lines=lines), window, history, traffic=traffic)
    shifted = {s.template for s in weighed.services["callee"].shifts}
    assert "INFO C#53 got" in shifted and "INFO C#60 list" not in shifted


def test_the_log_step_is_on_the_path_and_never_in_a_training_record() -> None:
    from thinkfl_operator.config.settings import Settings
    from thinkfl_operator.core.models import Incident
    from thinkfl_operator.demo.synthetic import generate
    from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
    from thinkfl_operator.feedback.conversations import conversations_of

    incident = generate(fault="exception", service="cartservice", minutes=40)
    result = HeuristicEngine(Settings()).diagnose(incident.store(), Incident(time_s=incident.time_s))
    [step] = [s for s in result.steps if s.tool == "read_logs"]
    assert "cartservice: new ERROR `CartHandler#63" in step.summary
    assert result.steps[-1].tool == "print_results"
    text = json.dumps(conversations_of(result))
    assert "read_logs" not in text and "print_results" in text
