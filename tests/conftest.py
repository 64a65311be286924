"""The opt-in end-to-end layer: tests marked ``kind`` run on a kind cluster only when asked.

Ask with ``python3 -m pytest -m kind --kind`` (or ``THINKFL_E2E_KIND=1``); they also need
``docker`` (with a reachable daemon), ``kind``, ``helm`` and ``kubectl``, and are skipped with the
reason otherwise. The option lives here because pytest reads options only from the root conftest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

KIND_TOOLS = ("docker", "kind", "helm", "kubectl")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kind", action="store_true", default=False,
                     help="run the kind end-to-end tests (tests/e2e; also THINKFL_E2E_KIND=1)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("kind")]
    if not marked:
        return
    reason = _kind_unavailable(config)
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=reason))


def _kind_unavailable(config: pytest.Config) -> str:
    """Why the kind tests cannot run here ('' when they can)."""
    if not (config.getoption("--kind") or os.environ.get("THINKFL_E2E_KIND") == "1"):
        return "kind end-to-end test: opt in with --kind or THINKFL_E2E_KIND=1"
    missing = [tool for tool in KIND_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"kind end-to-end test: {', '.join(missing)} not found on PATH (needs {', '.join(KIND_TOOLS)})"
    try:
        subprocess.run(["docker", "info"], check=True, capture_output=True, timeout=30)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"kind end-to-end test: no reachable Docker daemon (docker info: {exc})"
    return ""


@pytest.fixture(autouse=True)
def _allocator_setting_put_back() -> Iterator[None]:
    """``thinkfl``'s one-shot commands set MIMALLOC_PURGE_DELAY (``cli.main``); tests call
    ``main`` in this process, so the variable is put back after each test (subprocesses that
    later tests start would inherit it)."""
    before = os.environ.get("MIMALLOC_PURGE_DELAY")
    yield
    if before is None:
        os.environ.pop("MIMALLOC_PURGE_DELAY", None)
    else:
        os.environ["MIMALLOC_PURGE_DELAY"] = before
