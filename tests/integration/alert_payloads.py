"""Alertmanager webhook bodies the alert-intake tests post."""

from __future__ import annotations

from typing import Any

#: Two alerts of one group as Alertmanager v0.27 posts them (the second has no service label).
FIRING: dict[str, Any] = {
    "receiver": "thinkfl",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "HighErrorRate",
                "namespace": "train-ticket",
                "service": "ts-contacts-service",
                "severity": "critical",
            },
            "annotations": {
                "summary": "ts-contacts-service error rate above 5%",
                "description": "5xx ratio is 0.12 over the last 5 minutes.",
                "runbook_url": "https://runbooks.example/high-error-rate",
            },
            "startsAt": "2023-01-30T11:51:46.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=error_ratio+%3E+0.05&g0.tab=1",
            "fingerprint": "c6eadffa33fcdf37",
        },
        {
            "status": "firing",
            "labels": {"alertname": "NodeDiskFull", "instance": "node-3:9100",
                       "severity": "warning"},
            "annotations": {"summary": "disk of node-3 above 95%"},
            "startsAt": "2023-01-30T11:52:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=disk_used+%3E+0.95",
            "fingerprint": "bc97ff14869b13e3",
        },
    ],
    "groupLabels": {"namespace": "train-ticket"},
    "commonLabels": {"namespace": "train-ticket"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{namespace="train-ticket"}',
    "truncatedAlerts": 0,
}

#: Why the second alert of ``FIRING`` makes no incident.
FIRING_SKIP = ("alert 'NodeDiskFull' (fingerprint bc97ff14869b13e3): no service label "
               "(none of service, service_name, app, job is set)")
