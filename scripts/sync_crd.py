#!/usr/bin/env python3
"""Copy the one CRD source, crds/failureincidents.yaml, to its copies, byte for byte.

The copies are the Helm chart's ``crds/`` (Helm installs it before the templates),
``manifests/crd.yaml`` (plain YAML for ``kubectl apply``) and the package's own
(``thinkfl_operator/kube/``, served by the in-process API of ``thinkfl demo --operator``).
``--check`` changes nothing and exits 1 naming every copy that differs; tests/unit/test_chart.py checks the same.

    python scripts/sync_crd.py          # write the copies
    python scripts/sync_crd.py --check  # fail when a copy is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "crds" / "failureincidents.yaml"
COPIES = (
    ROOT / "helm" / "thinkfl-operator" / "crds" / "failureincidents.yaml",
    ROOT / "manifests" / "crd.yaml",
    # The in-process API of `thinkfl demo --operator` serves discovery and OpenAPI from it.
    ROOT / "operator" / "thinkfl_operator" / "kube" / "failureincidents.yaml",
)


def stale_copies() -> list[Path]:
    """The copies whose bytes differ from the source (missing ones included)."""
    source = SOURCE.read_bytes()
    return [copy for copy in COPIES if not copy.is_file() or copy.read_bytes() != source]


def sync() -> list[Path]:
    """Write every stale copy; returns the copies written."""
    source = SOURCE.read_bytes()
    written = stale_copies()
    for copy in written:
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(source)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_copies()
        for copy in stale:
            print(f"{copy.relative_to(ROOT)} differs from {SOURCE.relative_to(ROOT)}",
                  file=sys.stderr)
        if stale:
            print("run: python scripts/sync_crd.py", file=sys.stderr)
        return 1 if stale else 0
    for copy in sync():
        print(f"wrote {copy.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
