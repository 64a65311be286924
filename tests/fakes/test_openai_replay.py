"""Tests of the OpenAI replay fake itself, driven by the real ``openai`` client."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import openai
import pytest

from tests.fakes.openai_replay import (
    EmptyChoices,
    Fault,
    Malformed,
    ReplayServer,
    Reply,
    Turn,
)

MESSAGES = [{"role": "user", "content": "x" * 40}]  # 10 estimated prompt tokens


def _client(server: ReplayServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, **kwargs)


def _ask(client: openai.OpenAI, model: str = "ThinkFL") -> Any:
    return client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]


def test_scripted_contents_in_order_usage_and_recording() -> None:
    script: list[Turn] = ["first", Reply("second", prompt_tokens=123, completion_tokens=7)]
    with ReplayServer(script) as server, _client(server) as client:
        first = _ask(client, model="my-model")
        second = _ask(client)
        assert first.choices[0].message.content == "first"
        assert first.choices[0].finish_reason == "stop"
        assert first.model == "my-model"
        assert first.object == "chat.completion"
        assert first.usage is not None
        assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (10, 1)
        assert first.usage.total_tokens == 11
        assert second.choices[0].message.content == "second"
        assert second.usage is not None
        assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (123, 7)
        assert second.usage.total_tokens == 130
        assert server.calls == 2
        assert [r["model"] for r in server.requests] == ["my-model", "ThinkFL"]
        assert server.requests[0]["messages"] == MESSAGES
        # default when_exhausted="error": a 500 saying the script ran out
        with pytest.raises(openai.InternalServerError, match="exhausted"):
            _ask(client)


def test_models_list_and_health() -> None:
    with ReplayServer([], model_name="ThinkFL-7B") as server, _client(server) as client:
        assert [m.id for m in client.models.list()] == ["ThinkFL-7B"]
        with urllib.request.urlopen(server.root_url + "/health", timeout=2) as resp:
            assert resp.status == 200


@pytest.mark.parametrize(
    ("fault", "exc_type"),
    [
        (Fault(500), openai.InternalServerError),
        (Fault(429, "slow down", headers={"Retry-After": "3"}), openai.RateLimitError),
        (
            Fault(400, {"error": {"message": "bad prompt", "type": "x", "code": None}}),
            openai.BadRequestError,
        ),
    ],
)
def test_faults_map_to_openai_exceptions(fault: Fault, exc_type: type[Exception]) -> None:
    with ReplayServer([fault]) as server, _client(server) as client:
        with pytest.raises(exc_type) as info:
            _ask(client)
        assert isinstance(info.value, openai.APIStatusError)
        assert info.value.status_code == fault.status
        if fault.status == 429:
            assert info.value.response.headers["retry-after"] == "3"
            assert "slow down" in str(info.value)


def test_malformed_raises_json_decode_error() -> None:
    # Malformed is served as application/json, so openai's response.json() fails with a
    # json.JSONDecodeError (ValueError), not an openai.APIError.
    with (
        ReplayServer([Malformed("{not json")]) as server,
        _client(server) as client,
        pytest.raises(json.JSONDecodeError),
    ):
        _ask(client)


def test_empty_choices_stream_rejection_and_callables() -> None:
    seen: list[str] = []

    def dynamic(req: dict[str, Any]) -> Reply:
        seen.append(req["model"])
        return Reply(f"echo {req['model']}")

    with (
        ReplayServer([EmptyChoices(), dynamic], when_exhausted="repeat_last") as server,
        _client(server) as client,
    ):
        assert _ask(client).choices == []
        with pytest.raises(openai.BadRequestError, match="stream"):
            client.chat.completions.create(
                model="m",
                messages=MESSAGES,  # type: ignore[arg-type]
                stream=True,
            )
        assert _ask(client, model="a").choices[0].message.content == "echo a"
        assert _ask(client, model="b").choices[0].message.content == "echo b"  # repeat_last
        assert seen == ["a", "b"]
        assert server.calls == 4


def test_slow_reply_times_out_without_blocking_other_requests() -> None:
    with (
        ReplayServer([Reply("late", delay_s=2), "fast"]) as server,
        _client(server, timeout=0.3) as client,
    ):
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _ask(client)
        assert time.monotonic() - start < 1.5
        # the slow handler is still sleeping server-side; the next request is served
        assert _ask(client).choices[0].message.content == "fast"


def test_server_stops_fast_with_a_reply_in_flight() -> None:
    errors: list[BaseException] = []
    server = ReplayServer([Reply("never", delay_s=30)]).start()
    url = server.base_url
    client = _client(server, timeout=10)

    def call() -> None:
        try:
            _ask(client)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 2
    while server.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.calls == 1
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.0
    worker.join(timeout=2)
    assert not worker.is_alive()
    client.close()
    with pytest.raises(openai.APIConnectionError):
        openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=1).models.list()
