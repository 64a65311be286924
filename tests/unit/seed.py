"""The seed ThinkFL README's example conversation (from ../shared), for the prompt and parser tests."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.shared import shared_path


def seed_conversation() -> list[dict[str, Any]]:
    """The messages of the seed README's ```json example."""
    text = shared_path("docs", "seed-thinkfl-readme.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert block is not None
    messages: list[dict[str, Any]] = json.loads(block.group(1))
    return messages
