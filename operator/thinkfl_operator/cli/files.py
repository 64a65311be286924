"""Files the commands write: one place for how, and for the one-line error when they cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from thinkfl_operator.core.errors import UserInputError


def write_json(path: Path, payload: Any) -> None:
    """``payload`` as indented UTF-8 JSON; ``UserInputError`` naming the file when it fails."""
    try:
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{path}: cannot write: {exc.strerror or exc}") from None
