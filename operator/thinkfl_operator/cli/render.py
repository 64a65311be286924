"""Text output: a diagnosis as ``kubectl describe fi`` will show it, and the evaluation table
(row by row, as each fault is diagnosed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from thinkfl_operator.cli.timeparse import iso
from thinkfl_operator.core.models import Diagnosis, Incident

if TYPE_CHECKING:
    from thinkfl_operator.evaluation.labels import Fault
    from thinkfl_operator.evaluation.runner import FaultResult, Summary

_ARG_WIDTH = 60


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [_line(r, widths, indent) for r in rows]


def _line(row: Sequence[str], widths: Sequence[int], indent: str) -> str:
    return indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()


def describe(incident: Incident, diagnosis: Diagnosis, source: str) -> str:
    lines = ["Spec:"]
    if incident.trace_id:
        lines.append(f"  Trace ID:    {incident.trace_id}")
    if incident.time_s is not None:
        lines.append(f"  Time:        {iso(incident.time_s)}")
    if incident.service:
        lines.append(f"  Service:     {incident.service}")
    lines.append(f"  Source:      {source}")
    top = diagnosis.top
    lines += ["Status:", "  Phase:       Diagnosed" if top else "  Phase:       Failed"]
    lines.append(f"  Engine:      {diagnosis.engine}" + (f" ({diagnosis.model})" if diagnosis.model else ""))
    if top:
        lines.append(f"  Summary:     {summary_line(diagnosis)}")
    lines.append("  Root Causes:")
    rows = [["RANK", "SERVICE", "POD", "NODE", "SCORE", "REASON"]]
    rows += [[str(c.rank), c.service or "-", c.pod or "-", c.node or "-", str(c.score), c.reason or "-"]
             for c in diagnosis.root_causes]
    lines += table(rows, "    ")
    lines.append("  Steps (diagnostic path):")
    for i, step in enumerate(diagnosis.steps, 1):
        args = ", ".join(f"{k}={v}" for k, v in step.arguments.items())
        if len(args) > _ARG_WIDTH:
            args = args[: _ARG_WIDTH - 1] + "…"
        lines.append(f"    {i:>2}. {step.tool}({args})")
        lines.append(f"        → {step.summary}")
    if diagnosis.log_evidence:
        lines.append("  Log Evidence:")
        lines += [f"    {line}" for line in diagnosis.log_evidence]
    if diagnosis.traces:
        lines.append(f"  Traces:      {', '.join(diagnosis.traces)}")
    usage = diagnosis.usage
    timing = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in usage.seconds.items())
    lines.append(f"  Usage:       {usage.tool_calls} tool calls, {usage.llm_calls} LLM calls; {timing}")
    for note in diagnosis.notes:
        lines.append(f"  Note:        {note}")
    return "\n".join(lines)


def summary_line(diagnosis: Diagnosis) -> str:
    top = diagnosis.top
    if top is None:
        return "no root cause found"
    where = top.pod or top.service or top.node
    return f"{top.service or top.node} ({where}) score {top.score}: {top.reason}"


class EvaluationTable:
    """The evaluation's table, printed a row at a time as each fault is diagnosed.

    The column widths come from what is known before the first diagnosis: the faults (time,
    type, true service), every status a rank can be, and the services a top-1 can name
    (``services``: those of the dataset's pods). A top-1 longer than all of them would push its
    row's last column right; no other column moves.
    """

    HEADER = ("TIME (UTC)", "FAULT", "TRUE SERVICE", "RANK", "TOP-1", "SECONDS")

    def __init__(self, faults: Iterable[Fault], services: Iterable[str] = ()) -> None:
        faults = list(faults)
        known = [*(f.service for f in faults), *services]
        columns: tuple[list[str], ...] = ([f.time_text for f in faults], [f.fault_type for f in faults], known,
                   ["skipped", "error", "miss"], known, [])
        self.widths = [max([len(head), *map(len, values)])
                       for head, values in zip(self.HEADER, columns, strict=True)]

    def header(self) -> str:
        return _line(self.HEADER, self.widths, "")

    def row(self, result: FaultResult) -> str:
        fault = result.fault
        if result.diagnosis is None:
            status = "error" if result.error else "skipped"
            return _line([fault.time_text, fault.fault_type, fault.service, status, "-", "-"], self.widths, "")
        rank = result.service_rank
        top = result.diagnosis.top
        return _line([fault.time_text, fault.fault_type, fault.service, str(rank) if rank else "miss",
                      top.service if top else "-", f"{result.seconds:.2f}"], self.widths, "")


def evaluation_summary(results: list[FaultResult], summary: Summary) -> str:
    """What follows the rows: why each fault without a diagnosis has none, then the scores."""
    lines = [f"{'error' if r.error else 'skipped'} {r.fault.time_text}: {r.error or r.skipped}"
             for r in results if r.diagnosis is None]
    rec = summary.recall
    lines.append(
        f"faults scored: {summary.scored}, skipped: {summary.skipped}; service level: "
        f"R@1 {rec[1]:.2%}  R@3 {rec[3]:.2%}  R@5 {rec[5]:.2%}  R@10 {rec[10]:.2%}  MRR {summary.mrr:.4f}"
    )
    if summary.pod_r1 is not None:
        lines.append(f"pod level: R@1 {summary.pod_r1:.2%}")
    return "\n".join(lines)
