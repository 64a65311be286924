"""Text output: a diagnosis as ``kubectl describe fi`` will show it, and the evaluation table."""

from __future__ import annotations

from collections.abc import Sequence

from thinkfl_operator.cli.timeparse import iso
from thinkfl_operator.evaluation.runner import FaultResult, Summary
from thinkfl_operator.models import Diagnosis, Incident

_ARG_WIDTH = 60


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


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


def evaluation(results: list[FaultResult], summary: Summary) -> str:
    rows = [["TIME (UTC)", "FAULT", "TRUE SERVICE", "RANK", "TOP-1", "SECONDS"]]
    for r in results:
        if r.diagnosis is None:
            status = "error" if r.error else "skipped"
            rows.append([r.fault.time_text, r.fault.fault_type, r.fault.service, status, "-", "-"])
            continue
        rank = r.service_rank
        top = r.diagnosis.top
        rows.append([r.fault.time_text, r.fault.fault_type, r.fault.service,
                     str(rank) if rank else "miss", top.service if top else "-", f"{r.seconds:.2f}"])
    lines = table(rows, "")
    for r in results:
        if r.diagnosis is None:
            lines.append(f"{'error' if r.error else 'skipped'} {r.fault.time_text}: {r.error or r.skipped}")
    rec = summary.recall
    lines.append(
        f"faults scored: {summary.scored}, skipped: {summary.skipped}; service level: "
        f"R@1 {rec[1]:.2%}  R@3 {rec[3]:.2%}  R@5 {rec[5]:.2%}  R@10 {rec[10]:.2%}  MRR {summary.mrr:.4f}"
    )
    if summary.pod_r1 is not None:
        lines.append(f"pod level: R@1 {summary.pod_r1:.2%}")
    return "\n".join(lines)
