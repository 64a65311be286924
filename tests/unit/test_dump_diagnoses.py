"""``scripts/dump_diagnoses.py``: the whole diagnoses of a day, the same bytes every time (the
check that a cheaper engine changed no answer rests on it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.modules import from_file
from tests.shared import shared_path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "dump_diagnoses.py"


def test_a_day_dumps_the_same_bytes_twice_with_logs_on_and_off(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    day = shared_path("datasets", "nezha", "rca_data", "2022-08-23")
    script = from_file(SCRIPT)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert script.main([str(first), str(day)]) == 0
    assert script.main([str(second), str(day)]) == 0
    assert first.read_bytes() == second.read_bytes()
    entries = json.loads(first.read_text())
    assert sorted(entries) == ["2022-08-23 logs=False", "2022-08-23 logs=True"]
    scored = [e for e in entries["2022-08-23 logs=True"] if "ranked" in e]
    assert scored and all(e["steps"] and e["ranked"][0]["score"] >= e["ranked"][-1]["score"] for e in scored)
    assert "2022-08-23 logs=True: 32 faults" in capsys.readouterr().out


def test_no_arguments_is_a_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert from_file(SCRIPT).main([]) == 2
    assert capsys.readouterr().err.startswith("usage: python scripts/dump_diagnoses.py OUT.json")
