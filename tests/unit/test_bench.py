"""``thinkfl bench``: a warm-up evaluation not counted, then parse passes and evaluations
alternated (both sides see the machine alike), each side the median of its runs."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from thinkfl_operator.config.settings import Settings
from thinkfl_operator.evaluation import bench


def test_the_warm_up_is_not_counted_and_the_sides_alternate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []
    evaluations = iter([9.0, 1.0, 3.0, 2.0])  # the warm-up, then three counted
    parses = iter([(0.5, 0.6), (0.25, 0.3), (1.5, 1.6)])

    def evaluate(*_: object) -> SimpleNamespace:
        calls.append("evaluate")
        return SimpleNamespace(seconds=next(evaluations), cpu=1.0, results=[], store=None, engine=None)

    def parse(files: list[Path]) -> tuple[float, float]:
        calls.append("parse")
        return next(parses)

    monkeypatch.setattr(bench, "_evaluate_cold", evaluate)
    monkeypatch.setattr(bench, "parse_pass", parse)
    monkeypatch.setattr(bench, "read_faults", lambda _root: [])
    monkeypatch.setattr(bench.runner, "run", lambda *_a, **_k: [])
    monkeypatch.setattr(bench.runner, "summarize", lambda _r: SimpleNamespace(scored=0, recall={1: 0.0}, mrr=0.0))
    out = bench.bench_dataset(tmp_path, Settings(), jobs=2)
    assert calls == ["evaluate", "parse", "evaluate", "parse", "evaluate", "parse", "evaluate"]
    assert re.search(r"^parse CSVs \(pyarrow\): +0\.50 s", out, re.MULTILINE), out
    assert re.search(r"^evaluate \(cold\): +2\.00 s \(median of 3 after a warm-up: 1\.00–3\.00 s; 2 processes\)$",
                     out, re.MULTILINE), out
    assert re.search(r"^ratio evaluate/parse: +4\.0x$", out, re.MULTILINE), out
    assert re.search(r"^CPU, all processes: +evaluate 1\.00 s, parse 0\.60 s$", out, re.MULTILINE), out
