"""``thinkfl --help``, ``run --help`` and ``--version``: complete, and without the heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import pytest

from thinkfl_operator.cli.main import main
from thinkfl_operator.config.reference import rows
from thinkfl_operator.config.settings import Settings

HEAVY = ("openai", "pandas", "pyarrow", "numpy", "kopf", "kmock", "kubernetes")

_PROBE = """
import json, sys
from thinkfl_operator.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = [name for name in json.loads({heavy!r}) if name in sys.modules]
print(json.dumps(heavy))
"""


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["diagnose", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    """A fresh interpreter: the help pages leave openai, pandas and kopf unimported."""
    probe = _PROBE.format(heavy=json.dumps(HEAVY))
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                          timeout=60, check=True)
    *page, last = done.stdout.splitlines()
    assert page, done.stdout  # the page was printed before the check
    assert json.loads(last) == [], f"{argv} imported {last}"


def _page(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_version_is_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    assert _page(capsys, ["--version"]) == f"thinkfl {version('thinkfl-operator')}\n"


def test_run_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    page = _page(capsys, ["run", "--help"])
    for variable, default, _ in rows(Settings):
        assert f"  {variable}={default}\n" in page, variable
    assert "/etc/thinkfl/secrets" in page and "KUBECONFIG" in page


@pytest.mark.parametrize(("argv", "option", "words"), [
    (["diagnose", "--help"], "--engine", "deterministic"),
    (["evaluate", "--help"], "--engine", "deterministic"),
    (["demo", "--help"], "--seed", "same seed"),
])
def test_options_say_what_they_do(capsys: pytest.CaptureFixture[str], argv: list[str],
                                  option: str, words: str) -> None:
    page = " ".join(_page(capsys, argv).split())  # argparse wraps to the terminal's width
    described = page[page.rindex(option):]
    assert words in described[:200], described[:200]
