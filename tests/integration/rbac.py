"""What the recording emulator was asked for, against what the chart's RBAC rules grant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "GET": "get", "CREATE": "create",
          "UPDATE": "patch", "DELETE": "delete"}


def used(api: Any) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every request the emulator served, discovery left out."""
    found = set()
    for request in api._requests:  # the recording emulator keeps every request it served
        resource = request.resource
        if resource is None or resource.plural is None:
            continue  # discovery: no RBAC needed
        plural = resource.plural + (f"/{request.subresource}" if request.subresource else "")
        found.add((resource.group, plural, _VERBS[str(request.action).split(".")[-1]]))
    return found


def granted(values: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) the chart's Roles and ClusterRoles grant with ``values``,
    rendered by the real Helm engine."""
    import helm_python as helm
    import yaml

    chart = helm.Chart.load(Path(__file__).resolve().parents[2] / "helm" / "thinkfl-operator")
    rendered = chart.render(values, name="thinkfl-operator", namespace="thinkfl")
    rules = set()
    for name, text in rendered.items():
        if not name.endswith(".yaml"):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") in ("ClusterRole", "Role"):
                for rule in doc["rules"]:
                    rules |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                              for v in rule["verbs"]}
    return rules
