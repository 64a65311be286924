"""Modules that are files, not packages (``scripts/``, ``examples/``), imported from their path
as their users run them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType


def from_file(path: Path, name: str | None = None) -> ModuleType:
    """The module in ``path``, executed once under ``name`` (default: the file's stem)."""
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
