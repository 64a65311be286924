"""One ranking from three kinds of evidence: trace shifts, log shifts, CPU shifts.

Each service's suspicion is its *strongest* evidence from any source on one log scale (trace
scores already are ``log1p`` of robust z; logs and CPU are mapped the same way and weighted so
a clear shift of either reaches a clear trace shift), plus a little of the sum, so two sources
agreeing beat one. The maximum, not the sum, is the point: in a code fault the traces of
unrelated services move a little by chance and the logs of the faulty one a lot; in a network
delay the reverse. Summing lets one source's noise outvote the other's signal; the maximum lets
the source that sees the fault speak, so a CPU fault still wins on CPU and a code fault on logs.

Measured on the labeled days in ../shared: service R@1 12/14, 17/17 and 7/8 all over the plateau
of log weights 1.5 to 2 and log floors 0 to 4 (CPU weight 2, offset 10, corroboration 0.2; a
grid before the traffic weights found CPU weights 2 to 3, offsets 10 to 20 and corroboration 0
to 0.3 alike). Weights are per kind of evidence, never per service: README, *Numbers*.
"""

from __future__ import annotations

import math

from thinkfl_operator.core.models import Candidate
from thinkfl_operator.engines.heuristic.resources import CpuShift
from thinkfl_operator.evidence.logshift import LogEvidence

#: Log shifts: weight of log1p(robust z across services).
LOG_WEIGHT = 2.0
#: A service's own log shift (strongest template |z|) below this is noise whatever the other
#: services show: the largest of a hundred templates' |z| under no change is about 3
#: (measured plateau: 3 to 4).
LOG_MIN_SCORE = 4.0
#: CPU shifts: weight of log1p(z − offset); a pod's CPU moves by a few z on its own.
CPU_WEIGHT = 2.0
CPU_OFFSET = 10.0
#: Share of the summed evidence added to the strongest (corroboration).
CORROBORATION = 0.2
#: A log robust z this strong makes the service the logs' own lead (``Diagnosis.log_lead``).
STRONG_LOG_Z = 10.0


def log_lead(ordered: list[Candidate], logs: LogEvidence | None) -> str:
    """The top service when its log shift alone is strong and the strongest of all services."""
    if not ordered or logs is None or not logs.usable:
        return ""
    log_z = logs.robust_z()
    top = ordered[0].service
    best = max(log_z, key=lambda s: log_z[s], default="")
    return top if best == top and log_z.get(top, 0.0) >= STRONG_LOG_Z else ""


def fuse(ordered: list[Candidate], logs: LogEvidence | None, cpu: dict[str, CpuShift]) -> list[Candidate]:
    """The trace engine's candidates re-ranked with log and CPU evidence (services new to the
    ranking join it); each candidate's reason names the evidence that put it there."""
    by_service: dict[str, Candidate] = {}
    for cand in ordered:
        if cand.service and cand.service not in by_service:
            by_service[cand.service] = cand
    log_z = logs.robust_z() if logs is not None and logs.usable else {}
    log_z = {s: z for s, z in log_z.items() if logs is not None and logs.services[s].score >= LOG_MIN_SCORE}
    services = list(by_service) + [s for s in [*log_z, *cpu] if s not in by_service]
    scored = []
    for position, service in enumerate(dict.fromkeys(services)):
        base = by_service.get(service, Candidate(service=service))
        trace = max(base.score, 0.0)
        log_part = LOG_WEIGHT * math.log1p(max(log_z.get(service, 0.0), 0.0))
        shift = cpu.get(service)
        cpu_part = CPU_WEIGHT * math.log1p(max(shift.z - CPU_OFFSET, 0.0)) if shift else 0.0
        parts = {"traces": trace, "logs": log_part, "cpu": cpu_part}
        score = max(parts.values()) + CORROBORATION * sum(parts.values())
        scored.append((score, -position, _candidate(base, service, parts, score, logs, shift)))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [cand for _, _, cand in scored]


def _candidate(base: Candidate, service: str, parts: dict[str, float], score: float,
               logs: LogEvidence | None, shift: CpuShift | None) -> Candidate:
    lead = max(parts, key=lambda k: parts[k])
    reasons = []
    if parts["logs"] > 0 and logs is not None and service in logs.services:
        reasons.append(logs.services[service].reason())
    if parts["cpu"] > 0 and shift is not None:
        reasons.append(shift.describe())
    if base.reason and (parts["traces"] > 0 or not reasons):
        reasons.insert(0 if lead == "traces" else len(reasons), base.reason)
    pod = base.pod
    if not pod and lead == "cpu" and shift is not None:
        pod = shift.pod
    elif not pod and lead == "logs" and logs is not None and service in logs.services:
        pod = logs.services[service].pod
    return Candidate(base.node, service, pod, "; ".join(r for r in reasons if r), score)
