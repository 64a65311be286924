"""A FailureIncident spec → Incident: every valid form, and every error naming field and value."""

from __future__ import annotations

from typing import Any

import pytest

from thinkfl_operator.core.errors import InvalidIncident, UserInputError
from thinkfl_operator.core.models import Incident
from thinkfl_operator.core.rfc3339 import parse as parse_rfc3339
from thinkfl_operator.incident.spec import engine_of, parse_spec, parse_window

T = "2023-01-30T11:51:46Z"
T_S = 1_675_079_506.0  # 2023-01-30 11:51:46 UTC
TRACE = "0271AFBD8266286038353F4E38334FFB"
CREATED = "2023-01-30T12:00:00Z"
CREATED_S = 1_675_080_000.0


def _error(spec: Any, created: str | None = None) -> str:
    with pytest.raises(InvalidIncident) as info:
        parse_spec(spec, created)
    return str(info.value)


# valid forms -------------------------------------------------------------------------------

def test_trace_id_alone_is_lowercased_and_time_defaults_to_creation() -> None:
    incident = parse_spec({"traceID": TRACE}, created=CREATED)
    assert incident == Incident(time_s=CREATED_S, trace_id=TRACE.lower())


def test_trace_id_without_creation_time_has_no_time() -> None:
    assert parse_spec({"traceID": "5aeba34e64f0e075"}).time_s is None


def test_trace_id_with_root_span_and_explicit_time() -> None:
    incident = parse_spec({"traceID": TRACE, "rootSpanID": "5AEBA34E64F0E075", "time": T},
                          created=CREATED)
    assert incident.root_span_id == "5aeba34e64f0e075"
    assert incident.time_s == T_S


def test_service_with_time_and_every_optional_field() -> None:
    spec = {
        "service": "ts-contacts-service",
        "time": T,
        "window": "15m",
        "maxTraces": 3,
        "targetNamespace": "train-ticket",
        "description": "p99 latency of ts-contacts-service above 2 s",
        "engine": "heuristic",
    }
    assert parse_spec(spec, created=CREATED) == Incident(
        time_s=T_S, service="ts-contacts-service", window_s=900.0, max_traces=3,
        description="p99 latency of ts-contacts-service above 2 s", namespace="train-ticket")


@pytest.mark.parametrize(("text", "expected"), [
    (T, T_S),
    ("2023-01-30T12:51:46+01:00", T_S),
    ("2023-01-30T06:21:46-05:30", T_S),
    ("2023-01-30T11:51:46.5Z", T_S + 0.5),
    ("2023-01-30T11:51:46.123456789Z", T_S + 0.123456),
    ("2024-02-29T00:00:00Z", 1_709_164_800.0),
])
def test_rfc3339_times(text: str, expected: float) -> None:
    assert parse_spec({"service": "frontend", "time": text}).time_s == pytest.approx(expected)
    assert parse_rfc3339(text).timestamp() == pytest.approx(expected)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("15m", 900.0), ("1h", 3600.0), ("1h30m", 5400.0), ("1m30s", 90.0),
    ("2h0m5s", 7205.0), ("24h", 86400.0), ("0h1s", 1.0),
])
def test_windows(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds
    assert parse_spec({"traceID": TRACE, "window": text}).window_s == seconds


@pytest.mark.parametrize("count", [1, 10])
def test_max_traces_bounds(count: int) -> None:
    assert parse_spec({"traceID": TRACE, "maxTraces": count}).max_traces == count


def test_null_fields_count_as_absent() -> None:
    spec = {"traceID": TRACE, "service": None, "time": None, "engine": None, "maxTraces": None}
    assert parse_spec(spec) == Incident(trace_id=TRACE.lower())


def test_description_of_2000_characters_is_kept() -> None:
    assert parse_spec({"traceID": TRACE, "description": "x" * 2000}).description == "x" * 2000


@pytest.mark.parametrize("engine", ["auto", "thinkfl", "heuristic"])
def test_engine_of_reads_the_spec(engine: str) -> None:
    assert engine_of({"traceID": TRACE, "engine": engine}, default="auto") == engine


def test_engine_of_defaults_to_the_operator_setting() -> None:
    assert engine_of({"traceID": TRACE}, default="heuristic") == "heuristic"
    assert engine_of({"traceID": TRACE, "engine": None}, default="thinkfl") == "thinkfl"


def test_engine_of_rejects_a_bad_default() -> None:
    with pytest.raises(ValueError, match="'gpt' is not one of auto, thinkfl, heuristic"):
        engine_of({}, default="gpt")


# errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ({"service": "frontend", "time": "2023-13-01"},
     'spec.time "2023-13-01" is not an RFC 3339 time'),
    ({"service": "frontend", "time": "2023-02-30T00:00:00Z"},
     'spec.time "2023-02-30T00:00:00Z" is not an RFC 3339 time'),
    ({"service": "frontend", "time": "2023-01-30 11:51:46"},
     'spec.time "2023-01-30 11:51:46" is not an RFC 3339 time'),
    ({"service": "frontend", "time": "2023-01-30T11:51:46"},
     'spec.time "2023-01-30T11:51:46" is not an RFC 3339 time'),
    ({"service": "frontend", "time": 1675079506},
     "spec.time 1675079506 is not a string"),
    ({"traceID": TRACE, "window": "15 minutes"},
     'spec.window "15 minutes" is not a duration like 90s, 15m or 1h'),
    ({"traceID": TRACE, "window": "30m1h"},
     'spec.window "30m1h" is not a duration like 90s, 15m or 1h'),
    ({"traceID": TRACE, "window": ""},
     'spec.window "" is not a duration like 90s, 15m or 1h'),
    ({"traceID": TRACE, "window": "0m"}, 'spec.window "0m" is not longer than 0s'),
    ({"traceID": TRACE, "window": "24h1s"}, 'spec.window "24h1s" is longer than 24h'),
    ({"traceID": TRACE, "engine": "gpt"},
     'spec.engine "gpt" is not one of auto, thinkfl, heuristic'),
    ({"traceID": "not-a-trace"},
     'spec.traceID "not-a-trace" is not a trace ID (1 to 32 hexadecimal digits)'),
    ({"traceID": "0" * 33},
     f'spec.traceID "{"0" * 33}" is not a trace ID (1 to 32 hexadecimal digits)'),
    ({"traceID": TRACE, "rootSpanID": "root"},
     'spec.rootSpanID "root" is not a span ID (1 to 32 hexadecimal digits)'),
    ({"service": "frontend", "time": T, "rootSpanID": "5aeba34e64f0e075"},
     'spec.rootSpanID "5aeba34e64f0e075" needs spec.traceID'),
    ({"service": " frontend", "time": T},
     ('spec.service " frontend" is not a service name (1 to 253 characters, '
      "no leading or trailing spaces)")),
    ({"traceID": TRACE, "maxTraces": 11},
     "spec.maxTraces 11 is not a whole number from 1 to 10"),
    ({"traceID": TRACE, "maxTraces": 0},
     "spec.maxTraces 0 is not a whole number from 1 to 10"),
    ({"traceID": TRACE, "maxTraces": "3"},
     'spec.maxTraces "3" is not a whole number from 1 to 10'),
    ({"traceID": TRACE, "maxTraces": True},
     "spec.maxTraces true is not a whole number from 1 to 10"),
    ({"traceID": TRACE, "targetNamespace": "Train_Ticket"},
     ('spec.targetNamespace "Train_Ticket" is not a namespace name '
      "(lowercase letters, digits and '-', at most 63 characters)")),
    ({"traceID": TRACE, "description": "x" * 2001},
     "spec.description is 2001 characters long; at most 2000 are allowed"),
    ({"traceId": TRACE},
     ("spec.traceId is not a FailureIncident field (known: traceID, rootSpanID, service, time, "
      "window, maxTraces, targetNamespace, description, engine, feedback); "
      "a FailureIncident needs spec.traceID or spec.service (spec.time defaults to its creation "
      "time)")),
    ({}, "a FailureIncident needs spec.traceID or spec.service (spec.time defaults to its creation time)"),
    ({"time": T}, "a FailureIncident needs spec.traceID or spec.service (spec.time defaults to its creation time)"),
])
def test_error_messages_name_the_field_and_value(spec: dict[str, Any], message: str) -> None:
    assert _error(spec, created=CREATED) == message


def test_service_alone_is_completed_by_the_creation_time() -> None:
    """``{service: frontend}`` is "frontend is failing now", as the CRD documents."""
    incident = parse_spec({"service": "frontend"}, created=CREATED)
    assert incident.service == "frontend"
    assert incident.time_s == parse_rfc3339(CREATED).timestamp()


def test_a_bad_field_does_not_also_report_the_missing_starting_point() -> None:
    assert _error({"service": "frontend", "time": "noon"}) == (
        'spec.time "noon" is not an RFC 3339 time')


def test_every_problem_is_reported_at_once() -> None:
    spec = {"traceID": TRACE, "window": "soon", "engine": "gpt", "maxTraces": 50}
    assert _error(spec) == (
        'spec.window "soon" is not a duration like 90s, 15m or 1h; '
        "spec.maxTraces 50 is not a whole number from 1 to 10; "
        'spec.engine "gpt" is not one of auto, thinkfl, heuristic')


def test_a_bad_creation_timestamp_is_named() -> None:
    assert _error({"traceID": TRACE}, created="yesterday") == (
        'metadata.creationTimestamp "yesterday" is not an RFC 3339 time')


def test_long_values_are_cut_in_messages() -> None:
    message = _error({"traceID": TRACE, "window": "9" * 200})
    assert message == f'spec.window "{"9" * 79}…" is not a duration like 90s, 15m or 1h'


def test_engine_of_names_a_bad_engine() -> None:
    with pytest.raises(InvalidIncident) as info:
        engine_of({"engine": "gpt"}, default="auto")
    assert str(info.value) == 'spec.engine "gpt" is not one of auto, thinkfl, heuristic'


def test_a_spec_that_is_not_an_object() -> None:
    assert _error(["traceID"]) == 'a FailureIncident spec must be an object, not ["traceID"]'


def test_invalid_incident_is_a_user_error_and_not_retryable() -> None:
    with pytest.raises(UserInputError) as info:
        parse_spec({})
    assert info.value.retryable is False
