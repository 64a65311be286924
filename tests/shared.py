"""Where the third-party datasets live (``../shared`` next to the repo), and how tests reach them.

``shared_path`` skips the calling test when the folder is absent, or fails it when
``THINKFL_REQUIRE_SHARED=1`` (as in CI), so missing data never passes silently there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: tests/shared.py → parents[1] is the repo root; the shared folder sits beside it.
SHARED: Path = Path(__file__).resolve().parents[1].parent / "shared"
#: The TrainTicket day whose metrics are backfilled into ``prometheus_nezha_tt``.
NEZHA_TT_DAY = ("datasets", "nezha", "rca_data", "2023-01-30")


def shared_path(*parts: str) -> Path:
    """``SHARED / parts``; skips (or fails, when required) the test if it does not exist."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"shared dataset not found: {path} (set up ../shared next to the repo)"
        if os.environ.get("THINKFL_REQUIRE_SHARED") == "1":
            pytest.fail(f"{reason}; THINKFL_REQUIRE_SHARED=1 requires it")
        pytest.skip(reason)
    return path
