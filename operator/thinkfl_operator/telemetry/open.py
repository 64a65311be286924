"""Open a dataset folder with the store that understands its layout."""

from __future__ import annotations

from pathlib import Path

from thinkfl_operator.core.errors import DatasetError
from thinkfl_operator.telemetry.aiops import AiopsStore, is_aiops_layout
from thinkfl_operator.telemetry.nezha import NezhaStore, is_nezha_day
from thinkfl_operator.telemetry.store import Store


def open_dataset(path: Path) -> Store:
    """A Nezha day folder or an AIOps-2022 folder, picked by what the folder holds."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(path, "no such folder")
    if not path.is_dir():
        raise DatasetError(path, "not a folder")
    # AIOps first: its trace/ folder would also pass the (looser) Nezha check.
    if is_aiops_layout(path):
        return AiopsStore(path)
    if is_nezha_day(path):
        return NezhaStore(path)
    raise DatasetError(
        path,
        "not a dataset folder: expected a Nezha day (trace/, metric/) "
        "or the AIOps-2022 layout (trace/all/)",
    )
