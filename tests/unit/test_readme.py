"""The README's demo output is real: every line of its example block (except elisions) appears in
what `thinkfl demo` prints, and its two commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.modules import from_file
from thinkfl_operator.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _demo_example() -> list[str]:
    block = README.split("Abridged output:", 1)[1].split("```", 2)[1]
    return [line.rstrip() for line in block.splitlines()[1:] if line.strip() and "..." not in line
            and "…" not in line]


def test_readme_demo_lines_appear_in_the_demo_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    output = capsys.readouterr().out.splitlines()
    missing = [line for line in _demo_example() if line not in output]
    assert not missing, missing


def test_ci_runs_the_readme_test_command() -> None:
    command = re.search(r"^(python3 -m pytest)\s+#", README, re.MULTILINE)
    assert command is not None
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"\n{command.group(1)}\n" in ci


def test_readme_configuration_reference_is_generated_from_the_settings() -> None:
    from thinkfl_operator.config.reference import markdown

    block = README.split("<!-- settings:begin", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block.split("\n", 1)[1].strip() == markdown().strip()


def test_readme_helm_values_reference_is_generated_from_the_chart() -> None:
    values_doc = from_file(ROOT / "scripts" / "values_doc.py")
    block = README.split("<!-- values:begin", 1)[1].split("<!-- values:end -->", 1)[0]
    assert block.split("\n", 1)[1].strip() == values_doc.markdown().strip()
    keys = [key for key, _, _ in values_doc.rows(values_doc.VALUES.read_text("utf-8"))]
    assert {"traces.url", "prometheus.url", "llm.baseUrl", "vllm.enabled", "engine"} <= set(keys)
