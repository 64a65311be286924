"""One format for every logger: our structlog events and the libraries' records (kopf's, urllib3's)
come out on stderr as one JSON object a line, with level, logger, timestamp and a traceback as
one field."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
import structlog

from thinkfl_operator.config.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were (pytest's own handlers included)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines()]  # every line is one JSON object


def test_every_logger_comes_out_as_one_json_object_a_line(
        capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO", "json")
    # What kopf's object logger passes (kopf._core.actions.loggers.ObjectLogger): a reference,
    # the do-not-post flag and its settings object, which is not JSON.
    ref = {"apiVersion": "thinkfl.dev/v1alpha1", "kind": "FailureIncident", "name": "checkout-slow",
           "uid": "0f1e", "namespace": "default"}
    logging.getLogger("kopf.objects").info(
        "Handler 'created' succeeded.",
        extra={"k8s_ref": ref, "k8s_skip": False, "settings": kopf.OperatorSettings()})
    logging.getLogger("urllib3.connectionpool").warning(
        "Connection pool is full, discarding connection: %s. Connection pool size: %s", "jaeger", 10)
    logging.getLogger("aiohttp.server").debug("below the level")
    structlog.get_logger("thinkfl_operator.kube.handlers").info("phase shown", incident="checkout-slow")
    try:
        raise ValueError("the model answered nonsense\non two lines")
    except ValueError:
        logging.getLogger("kopf.objects").exception("Handler 'created' failed with an exception.")
        structlog.get_logger("thinkfl_operator.kube.runner").exception("diagnosis crashed")

    kopf_info, urllib3, ours, kopf_error, our_error = _lines(capsys)
    assert kopf_info["event"] == "Handler 'created' succeeded."
    assert kopf_info["level"] == "info" and kopf_info["logger"] == "kopf.objects"
    assert kopf_info["object"] == ref
    assert "settings" not in kopf_info and "k8s_skip" not in kopf_info
    assert urllib3 == {"event": "Connection pool is full, discarding connection: jaeger. "
                                "Connection pool size: 10", "level": "warning",
                       "logger": "urllib3.connectionpool", "timestamp": urllib3["timestamp"]}
    assert urllib3["timestamp"].endswith("Z")
    assert ours["event"] == "phase shown" and ours["incident"] == "checkout-slow"
    assert ours["logger"] == "thinkfl_operator.kube.handlers" and ours["level"] == "info"
    for record in (kopf_error, our_error):
        assert record["level"] == "error"
        assert record["exception"].startswith("Traceback (most recent call last)")
        assert record["exception"].endswith("ValueError: the model answered nonsense\non two lines")


def test_kopf_command_line_handler_is_replaced(capsys: pytest.CaptureFixture[str],
                                               restore_logging: None) -> None:
    """``kopf run`` puts a plain-text handler on the root logger before it imports our module;
    configuring logging there leaves one handler, ours."""
    from kopf._core.actions import loggers  # what kopf's CLI calls (kopf/cli.py)

    loggers.configure()
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")  # a second call replaces the first
    logging.getLogger("kopf.activities.startup").info("Activity 'configure' succeeded.")
    (line,) = _lines(capsys)
    assert line["logger"] == "kopf.activities.startup"


def test_console_format_names_level_and_logger(capsys: pytest.CaptureFixture[str],
                                               restore_logging: None) -> None:
    configure_logging("WARNING", "console")
    logging.getLogger("kopf.objects").info("not shown")
    logging.getLogger("kopf.objects").warning("Patching failed")
    (line,) = capsys.readouterr().err.splitlines()
    assert "[warning  ] Patching failed" in line and "[kopf.objects]" in line


@pytest.mark.parametrize(("level", "shown"), [("INFO", 1), ("DEBUG", 2)])
def test_urllib3_retries_of_its_own_show_only_when_debugging(
        capsys: pytest.CaptureFixture[str], restore_logging: None, level: str, shown: int) -> None:
    """The caller says once what the last try ended in; each retry before is debugging detail."""
    configure_logging(level, "json")
    pool = logging.getLogger("urllib3.connectionpool")
    pool.warning("Retrying (%r) after connection broken by '%r': %s", "Retry(total=2)", "refused", "/apis")
    pool.warning("Connection pool is full, discarding connection: %s", "kubernetes")
    assert len(_lines(capsys)) == shown
