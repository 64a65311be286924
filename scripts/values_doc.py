"""The Helm values reference, generated from the `# --` comments of the chart's values.yaml.

``python scripts/values_doc.py`` prints the Markdown table that the README embeds between the
``values:begin``/``values:end`` markers; a test keeps the two identical.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

VALUES = Path(__file__).resolve().parents[1] / "helm" / "thinkfl-operator" / "values.yaml"
_KEY = re.compile(r"^(\s*)([A-Za-z0-9_]+):\s*(.*)$")


def rows(text: str) -> list[tuple[str, str, str]]:
    """(dotted key, default as written, description) of every key with a `# --` comment."""
    out: list[tuple[str, str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if pending:
                pending.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        if pending:
            out.append((path, rest.split(" #")[0].strip() or "(a map)", " ".join(pending)))
            pending = []
        if not rest:
            stack.append((indent, key))
    return out


def markdown(path: Path = VALUES) -> str:
    lines = ["| value | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {text.replace('|', '/')} |"
              for key, default, text in rows(path.read_text(encoding="utf-8"))]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown() + "\n")
