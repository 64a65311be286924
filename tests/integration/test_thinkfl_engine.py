"""The ThinkFL engine end to end: the real ``openai`` client against the replay server.

Nothing of ``openai`` or of the package is patched: each test starts a ``ReplayServer`` that
plays a scripted (or policy-driven) ThinkFL, builds the engine with ``make_engine`` on settings
pointing at it, and checks what the engine sent, what it answered and what it did when the
endpoint misbehaved. Retry and timeout settings are small so every test runs in well under 3 s.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_replay import EmptyChoices, Fault, Malformed, ReplayServer, Reply, Turn
from tests.fakes.thinkfl_policy import WalkPolicy, call
from tests.shared import shared_path
from thinkfl_operator.cli.main import main
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import SPAN_FIELDS, Diagnosis, Incident
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.diagnose import make_engine
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.engines.thinkfl.client import LLMRejected, LLMUnavailable
from thinkfl_operator.engines.thinkfl.engine import NoAnswer
from thinkfl_operator.telemetry.open import open_dataset
from thinkfl_operator.telemetry.store import Store

AIOPS = ("datasets", "rclagent-v2-sample", "sample_data")
NEZHA_DAY = ("datasets", "nezha", "rca_data", "2023-01-30")
TRACE = "ae265c5b07acfe6cb3548eb855aa1357"
ROOT = "d1b3f238e544e3f0"

#: The scripted model's answer on the AIOps sample trace (recommendationservice first).
ANSWER = [{"pod": "recommendationservice-1"}, {"service": "productcatalogservice"},
          {"service": "frontend"}]
#: WalkPolicy ends at the deepest slow span: productcatalogservice-1 under recommendationservice.
WALK_TOP = "productcatalogservice"
SEARCH_ROOT = call("search_traces", {"parent_span_id": ROOT})
PRINT_ANSWER = call("print_results", {"root_causes": ANSWER}, "<tool_call>")


# helpers ------------------------------------------------------------------------------------------

def configured(base_url: str, **llm: Any) -> Settings:
    """Default settings with the LLM at ``base_url``, fast retries, and ``llm`` overrides."""
    settings = Settings()
    update = {"base_url": base_url, "retries": 2, "backoff_s": 0.01, "request_timeout_s": 1.0,
              "deadline_s": 5.0, **llm}
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=update)})


def diagnose(store: Store, url: str, engine: str = "thinkfl", **llm: Any) -> Diagnosis:
    """The sample trace diagnosed by ``engine`` with the LLM at ``url``."""
    return make_engine(engine, configured(url, **llm)).diagnose(store, Incident(trace_id=TRACE))


def tagged(obj: Any, closing: str = "</tool_call>") -> str:
    """A tagged call whose arguments are an object (not the trained JSON string)."""
    return "<tool_call>" + json.dumps(obj) + closing


def closed_port_url() -> str:
    """A base URL on a local port nothing listens on (bound by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def tool_messages(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "tool"]


def assert_answered(result: Diagnosis, service: str = "recommendationservice") -> None:
    assert result.engine == "thinkfl", result.notes
    assert result.model == "ThinkFL"
    assert result.top is not None and result.top.service == service, result.root_causes
    assert len(result.root_causes) >= 3


class Counted:
    """Wraps a policy: each reply carries explicit, distinct token counts, remembered here."""

    def __init__(self, policy: WalkPolicy) -> None:
        self.policy = policy
        self.replies: list[Reply] = []

    def __call__(self, request: dict[str, Any]) -> Reply:
        n = len(self.replies)
        reply = Reply(self.policy(request), prompt_tokens=1000 + 37 * n, completion_tokens=11 + n)
        self.replies.append(reply)
        return reply


@pytest.fixture(scope="module")
def aiops() -> Store:
    return open_dataset(shared_path(*AIOPS))


@pytest.fixture
def fast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its settings from the environment: small retries, backoff and deadline."""
    env = {"THINKFL_LLM__RETRIES": "1", "THINKFL_LLM__BACKOFF_S": "0.01",
           "THINKFL_LLM__REQUEST_TIMEOUT_S": "1", "THINKFL_LLM__DEADLINE_S": "5"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)


# 1. the conversation as the model sees it ---------------------------------------------------------

@pytest.mark.shared_data
def test_seed_conversation_shape_usage_and_answer(aiops: Store) -> None:
    policy = Counted(WalkPolicy())
    with ReplayServer(when_exhausted=policy) as server:
        result = diagnose(aiops, server.base_url)
        requests = server.requests

    assert_answered(result, WALK_TOP)
    assert result.traces == [TRACE]
    first = requests[0]
    assert first["model"] == "ThinkFL"
    assert not first.get("stream")
    root = aiops.find_trace(TRACE).span(ROOT)
    assert root is not None
    assert first["messages"] == [
        {"role": "system", "content": prompt.SYSTEM_PROMPT},
        {"role": "user", "content": prompt.first_user_message(root)},
    ]
    assert ROOT in first["messages"][1]["content"] and TRACE in first["messages"][1]["content"]

    # Each request extends the previous one by the model's reply and the tool's answer, in the
    # trained order (no interjected user turns when every call is in its stage).
    for before, after in itertools.pairwise(requests):
        assert after["messages"][: len(before["messages"])] == before["messages"]
        assert [m["role"] for m in after["messages"][len(before["messages"]):]] == [
            "assistant", "tool"]

    # search_traces answers are the training JSON: a list of objects with the nine sorted keys.
    last = requests[-1]["messages"]
    assert last[2]["content"] == SEARCH_ROOT
    searched = [t for t in tool_messages(last) if t.startswith("[")]
    assert searched, last
    for text in searched:
        items = json.loads(text.split("\n(", 1)[0], object_pairs_hook=list)
        assert isinstance(items, list)
        for pairs in items:
            assert [key for key, _ in pairs] == sorted(SPAN_FIELDS) == list(SPAN_FIELDS)
    root_children = json.loads(tool_messages(last)[0].split("\n(", 1)[0])
    assert root_children and all(c["parent_span"] == ROOT and c["trace_id"] == TRACE
                                 for c in root_children)

    # Usage: one LLM call per request, tokens as the server reported them.
    assert result.usage.llm_calls == len(requests) == len(policy.replies)
    assert result.usage.prompt_tokens == sum(r.prompt_tokens or 0 for r in policy.replies)
    assert result.usage.completion_tokens == sum(r.completion_tokens or 0 for r in policy.replies)
    assert result.usage.tool_calls == len(result.steps)

    # The transcript is the whole conversation, ending with the answer.
    assert result.transcript[:-1] == last
    assert result.transcript[-1] == {"role": "assistant", "content": policy.replies[-1].content}
    assert result.steps[0].tool == "search_traces"
    assert result.steps[0].arguments == {"parent_span_id": ROOT}
    assert result.steps[-1].tool == "print_results"
    top3 = {rc.service for rc in result.root_causes[:3]}
    assert {"recommendationservice", "productcatalogservice"} <= top3


# 2. messy replies ---------------------------------------------------------------------------------

_SEARCH = {"name": "search_traces", "arguments": {"parent_span_id": ROOT}}
_PRINT = {"name": "print_results", "arguments": {"root_causes": ANSWER}}
#: A call written inside a <think> block: must not be taken while a real call follows it.
_DECOY = tagged({"name": "print_results",
                 "arguments": {"root_causes": [{"service": "productcatalogservice"}]}})
_CUT = PRINT_ANSWER.index("frontend") + 3  # inside the third cause's value

MESSY: dict[str, list[Turn]] = {
    "trained-closing-tag": [call("search_traces", {"parent_span_id": ROOT}, "<tool_call>"),
                            PRINT_ANSWER],
    "python-dict": [f"<tool_call>{_SEARCH!r}</tool_call>", f"<tool_call>{_PRINT!r}<tool_call>"],
    "arguments-object": [tagged(_SEARCH), tagged(_PRINT, "<tool_call>")],
    "action-lines": [
        f"Action: search_traces\nAction Input: {json.dumps({'parent_span_id': ROOT})}",
        f"Action: print_results\nAction Input: {json.dumps({'root_causes': ANSWER})}",
    ],
    "qwen-function-marks": [
        f"✿FUNCTION✿: search_traces\n✿ARGS✿: {json.dumps({'parent_span_id': ROOT})}",
        f"✿FUNCTION✿: print_results\n✿ARGS✿: {json.dumps({'root_causes': ANSWER})}",
    ],
    "think-block": [
        (f"<think>The root is slow. I could answer now: {_DECOY} but better look deeper."
         f"</think>\n{SEARCH_ROOT}"),
        f"<think>recommendationservice waits 13 s on its callee.</think>\n{PRINT_ANSWER}",
    ],
    "text-around": [
        f"Let me look at the children of the root span.\n{SEARCH_ROOT}\nWaiting for the result.",
        f"The recommendation service is slow.\n{PRINT_ANSWER}\nThese are my findings.",
    ],
    "truncated-answer-object": [
        SEARCH_ROOT,
        ('<tool_call>{"name": "print_results", "arguments": {"root_causes": [{"pod": '
         '"recommendationservice-1"}, {"service": "productcatalogservice"}, {"service": "fro'),
    ],
    "truncated-answer-string": [SEARCH_ROOT, PRINT_ANSWER[:_CUT]],
    "plain-string-causes": [
        SEARCH_ROOT,
        call("print_results",
             {"root_causes": ["recommendationservice-1", "productcatalogservice"]}),
    ],
    "two-calls-one-reply": [f"{SEARCH_ROOT}\n{PRINT_ANSWER}"],
}


@pytest.mark.shared_data
@pytest.mark.parametrize("form", list(MESSY))
def test_messy_reply_forms_are_read(aiops: Store, form: str) -> None:
    script = MESSY[form]
    with ReplayServer(script) as server:  # a request past the script gets a 500
        result = diagnose(aiops, server.base_url)
        calls = server.calls

    assert_answered(result)
    assert result.top is not None and result.top.pod == "recommendationservice-1"
    # Every reply was read the first time: no corrective turn, no extra request.
    assert result.usage.llm_calls == calls == len(script)
    assert "user" not in [m["role"] for m in result.transcript[2:]]
    assert [s.tool for s in result.steps] == ["search_traces", "print_results"]
    assert result.steps[0].arguments == {"parent_span_id": ROOT}


# 3-5. corrective turns ----------------------------------------------------------------------------

@pytest.mark.shared_data
def test_unknown_tool_gets_a_corrective_tool_message(aiops: Store) -> None:
    unknown = tagged({"name": "search_logs", "arguments": {"service": "frontend"}})
    with ReplayServer([unknown, SEARCH_ROOT, PRINT_ANSWER]) as server:
        result = diagnose(aiops, server.base_url)
        requests = server.requests

    assert_answered(result)
    correction = {"role": "tool", "content": prompt.UNKNOWN_TOOL.format(
        name="search_logs", allowed="print_results, search_traces")}
    assert requests[1]["messages"][-2:] == [{"role": "assistant", "content": unknown}, correction]
    assert "search_logs" in correction["content"]
    assert "search_traces" in correction["content"] and "print_results" in correction["content"]
    assert result.usage.llm_calls == len(requests) == 3
    assert [s.tool for s in result.steps] == ["search_traces", "print_results"]


@pytest.mark.shared_data
def test_reply_without_a_tool_call_gets_the_call_format_again(aiops: Store) -> None:
    prose = "The root cause is probably the recommendation service."
    with ReplayServer([prose, SEARCH_ROOT, PRINT_ANSWER]) as server:
        result = diagnose(aiops, server.base_url)
        requests = server.requests

    assert_answered(result)
    assert requests[1]["messages"][-2:] == [{"role": "assistant", "content": prose},
                                            {"role": "user", "content": prompt.UNPARSABLE_REPLY}]
    assert result.usage.llm_calls == len(requests) == 3
    assert "no tool call found in the reply" in result.notes


@pytest.mark.shared_data
def test_repeated_call_is_answered_from_the_cache_with_a_nudge(aiops: Store) -> None:
    with ReplayServer([SEARCH_ROOT, SEARCH_ROOT, PRINT_ANSWER]) as server:
        result = diagnose(aiops, server.base_url)

    assert_answered(result)
    first, second = tool_messages(result.transcript)
    assert first.startswith("[{")
    assert second.startswith(prompt.REPEATED_CALL)
    assert second == prompt.REPEATED_CALL + "\n" + first
    assert [s.tool for s in result.steps] == ["search_traces", "print_results"]
    assert result.usage.tool_calls == 2
    assert result.usage.llm_calls == 3


# 6. budgets ---------------------------------------------------------------------------------------

BUDGETS = {"think_steps": 2, "rethink_steps": 2, "final_steps": 1}


def _forever(request: dict[str, Any]) -> str:
    return SEARCH_ROOT


@pytest.mark.shared_data
def test_endless_tool_calls_end_at_the_budget(aiops: Store) -> None:
    with ReplayServer(when_exhausted=_forever) as server:
        result = diagnose(aiops, server.base_url, "auto", **BUDGETS)
        calls = server.calls

    assert result.engine == "heuristic" and result.model == ""
    assert result.notes[0].startswith("LLMFallback:")
    assert "the model gave no usable answer: all 5 replies used without print_results" in result.notes[0]
    assert result.usage.llm_calls == calls == 2 + 2 + 1
    # The conversation is kept: stage prompts were sent and the final stage refused the search.
    users = [m["content"] for m in result.transcript if m["role"] == "user"]
    assert prompt.RETHINK_PROMPT in users and prompt.FINAL_PROMPT in users
    assert result.transcript[-1] == {"role": "tool", "content": prompt.FINAL_ONLY}
    assert {rc.service for rc in result.root_causes[:2]} == {"recommendationservice",
                                                            "productcatalogservice"}

    with ReplayServer(when_exhausted=_forever) as server:
        with pytest.raises(NoAnswer, match="all 5 replies used without print_results"):
            diagnose(aiops, server.base_url, "thinkfl", **BUDGETS)
        assert server.calls == 5


@pytest.mark.shared_data
def test_a_model_that_never_calls_a_tool_is_said_so_not_out_of_time(aiops: Store) -> None:
    """Five prose replies in a second: the reason is the unusable replies, not the budget."""
    with ReplayServer(when_exhausted=lambda _request: "I think it is the cart.") as server, \
            pytest.raises(NoAnswer) as info:
        diagnose(aiops, server.base_url, "thinkfl", **BUDGETS)
    assert str(info.value) == ("the model gave no usable answer: all 5 replies used without "
                               "print_results; 5 unusable tool calls, first: no tool call found in the reply")


# 7-11. the endpoint misbehaves --------------------------------------------------------------------

def _server_error(request: dict[str, Any]) -> Fault:
    return Fault(500, "the model worker crashed")


@pytest.mark.shared_data
def test_server_error_every_time(aiops: Store) -> None:
    with ReplayServer(when_exhausted=_server_error) as server:
        result = diagnose(aiops, server.base_url, "auto")
        url, calls = server.base_url, server.calls

    assert result.engine == "heuristic"
    note = result.notes[0]
    assert note.startswith("LLMFallback:")
    assert url in note and "server error 500" in note and "after 3 tries" in note
    assert calls == 2 + 1
    assert result.top is not None and result.top.service == "recommendationservice"

    with ReplayServer(when_exhausted=_server_error) as server:
        with pytest.raises(LLMUnavailable) as caught:
            diagnose(aiops, server.base_url, "thinkfl")
        assert server.calls == 3
        message = str(caught.value)
        assert server.base_url in message and "server error 500" in message
        assert "after 3 tries" in message


@pytest.mark.shared_data
def test_outage_mid_conversation_still_accounts_the_replies_received(aiops: Store) -> None:
    answered = Reply(SEARCH_ROOT, prompt_tokens=500, completion_tokens=20)
    with ReplayServer([answered], when_exhausted=_server_error) as server:
        result = diagnose(aiops, server.base_url, "auto")
        assert server.calls == 1 + 3

    assert result.engine == "heuristic"
    assert "server error 500" in result.notes[0]
    assert result.usage.llm_calls == 1
    assert result.usage.prompt_tokens == 500 and result.usage.completion_tokens == 20
    assert {"role": "assistant", "content": SEARCH_ROOT} in result.transcript


@pytest.mark.shared_data
def test_rate_limited_twice_then_answered(aiops: Store) -> None:
    limited = Fault(429, "slow down", headers={"Retry-After": "0"})
    with ReplayServer([limited, limited], when_exhausted=WalkPolicy()) as server:
        result = diagnose(aiops, server.base_url)
        requests = server.requests

    assert_answered(result, WALK_TOP)
    assert len(requests) == 2 + result.usage.llm_calls
    assert requests[0]["messages"] == requests[1]["messages"] == requests[2]["messages"]
    assert result.usage.llm_calls == 7  # the walk's conversation on this trace


@pytest.mark.shared_data
def test_slow_reply_times_out_and_is_retried(aiops: Store) -> None:
    with ReplayServer([Reply(SEARCH_ROOT, delay_s=3)], when_exhausted=WalkPolicy()) as server:
        result = diagnose(aiops, server.base_url, request_timeout_s=0.5)
        requests = server.requests

    # The first request was cut at its timeout (the reply would take 3 s) and sent again.
    assert_answered(result, WALK_TOP)
    assert len(requests) == result.usage.llm_calls + 1
    assert requests[0]["messages"] == requests[1]["messages"]


def _slow(request: dict[str, Any]) -> Reply:
    return Reply(SEARCH_ROOT, delay_s=3)


@pytest.mark.shared_data
@pytest.mark.parametrize(("retries", "deadline"), [(2, 5.0), (10, 1.5)],
                         ids=["retries-run-out", "deadline-runs-out"])
def test_every_reply_slow_falls_back_within_the_deadline(aiops: Store, retries: int,
                                                         deadline: float) -> None:
    with ReplayServer(when_exhausted=_slow) as server:
        result = diagnose(aiops, server.base_url, "auto", request_timeout_s=0.5, retries=retries,
                          deadline_s=deadline)
        calls = server.calls

    assert result.engine == "heuristic"
    assert result.notes[0].startswith("LLMFallback:")
    assert "no answer within" in result.notes[0]
    assert f"(after {calls} tries)" in result.notes[0]
    # Tries of 0.5 s each: the retries, or the deadline, whichever ends them first.
    assert calls <= min(retries + 1, int(deadline / 0.5) + 1)


def _malformed(request: dict[str, Any]) -> Malformed:
    return Malformed('{"id": "chatcmpl-1", "choices": [')


@pytest.mark.shared_data
def test_malformed_body_is_not_retried_and_falls_back(aiops: Store) -> None:
    """An answer that is not a chat completion is permanent (the transport policy): one try."""
    with ReplayServer([_malformed({})], when_exhausted=WalkPolicy()) as server:
        with pytest.raises(LLMRejected, match="malformed response"):
            diagnose(aiops, server.base_url)
        assert server.calls == 1

    with ReplayServer(when_exhausted=_malformed) as server:
        result = diagnose(aiops, server.base_url, "auto")
        assert server.calls == 1
    assert result.engine == "heuristic"
    assert "malformed response" in result.notes[0]


@pytest.mark.shared_data
def test_empty_choices_count_as_an_unusable_reply(aiops: Store) -> None:
    with ReplayServer([EmptyChoices()], when_exhausted=WalkPolicy()) as server:
        result = diagnose(aiops, server.base_url)
        calls = server.calls

    assert_answered(result, WALK_TOP)
    assert result.usage.llm_calls == calls
    assert result.transcript[2:4] == [{"role": "assistant", "content": ""},
                                      {"role": "user", "content": prompt.UNPARSABLE_REPLY}]


@pytest.mark.shared_data
def test_unreachable_endpoint(aiops: Store, fast_env: None,
                              capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port_url()
    result = diagnose(aiops, url, "auto")
    assert result.engine == "heuristic"
    assert result.notes[0].startswith("LLMFallback:")
    assert "cannot connect" in result.notes[0] and url in result.notes[0]

    data = str(shared_path(*AIOPS))
    started = time.monotonic()
    code = main(["diagnose", data, "--trace-id", TRACE, "--engine", "thinkfl", "--llm-url", url])
    out = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out.err and "Traceback" not in out.out
    lines = out.err.splitlines()
    assert len(lines) == 1, out.err
    assert url in lines[0] and "cannot connect" in lines[0]
    assert time.monotonic() - started < 2.0


# 12. a time-based incident ------------------------------------------------------------------------

def test_time_incident_shows_the_heuristic_trace() -> None:
    incident_data = generate(fault="cpu_contention", service="productcatalogservice")
    store = incident_data.store()
    incident = Incident(time_s=incident_data.time_s)
    with ReplayServer(when_exhausted=WalkPolicy()) as server:
        settings = configured(server.base_url)
        heuristic = make_engine("heuristic", settings).diagnose(store, incident)
        result = make_engine("thinkfl", settings).diagnose(store, incident)
        first = server.requests[0]["messages"][1]["content"]

    assert heuristic.traces
    shown = re.findall(r"\b[0-9a-f]{32}\b", first)
    assert shown and shown[0] in heuristic.traces
    assert shown[0] == heuristic.traces[0]  # max_traces 1: the most anomalous one
    assert result.traces == [shown[0]]
    assert_answered(result, incident_data.faulty_service)


# 13. names outside the topology -------------------------------------------------------------------

@pytest.mark.shared_data
def test_unknown_names_are_dropped_and_the_answer_padded(aiops: Store) -> None:
    causes = [{"service": "nosuchservice"}, {"pod": "recommendationservice-1"},
              {"node": "node-99"}, {"pod": "ghost-7"}]
    with ReplayServer([SEARCH_ROOT, call("print_results", {"root_causes": causes})]) as server:
        result = diagnose(aiops, server.base_url)
        baseline = make_engine("heuristic", configured(server.base_url)).diagnose(
            aiops, Incident(trace_id=TRACE))

    assert_answered(result)
    names = {n for rc in result.root_causes for n in (rc.service, rc.pod, rc.node)}
    assert not names & {"nosuchservice", "node-99", "ghost-7"}
    assert result.root_causes[0].reason == "named by the model"
    padded = result.root_causes[1:]
    assert len(padded) >= 2
    expected = [rc.service for rc in baseline.root_causes if rc.service != "recommendationservice"]
    assert [rc.service for rc in padded] == expected[: len(padded)]
    for rc in padded:
        assert rc.reason.startswith("deterministic engine"), rc


@pytest.mark.shared_data
def test_padding_deep_into_the_ranking_still_says_where_entries_came_from(aiops: Store) -> None:
    """Past its evidence the deterministic ranking has entries without a reason."""
    with ReplayServer([SEARCH_ROOT, PRINT_ANSWER.replace("frontend", "ghost")]) as server:
        settings = configured(server.base_url)
        settings = settings.model_copy(update={
            "heuristic": settings.heuristic.model_copy(update={"min_candidates": 6})})
        result = make_engine("thinkfl", settings).diagnose(aiops, Incident(trace_id=TRACE))

    assert result.engine == "thinkfl"
    assert [rc.reason for rc in result.root_causes[:2]] == ["named by the model"] * 2
    assert len(result.root_causes) == 6
    reasons = [rc.reason for rc in result.root_causes[2:]]
    assert all("deterministic engine" in reason for reason in reasons), reasons
    assert "deterministic engine: ranked next" in reasons  # padding without evidence


# 14. evaluate a Nezha day through the CLI ---------------------------------------------------------

@pytest.mark.shared_data
def test_evaluate_nezha_day_with_auto(tmp_path: Path, fast_env: None,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    day = shared_path(*NEZHA_DAY)
    target = tmp_path / "eval.json"
    with ReplayServer(when_exhausted=WalkPolicy()) as server:
        code = main(["evaluate", str(day), "--engine", "auto", "--llm-url", server.base_url,
                     "--json", str(target)])
        calls, errors = server.calls, server.errors
    capsys.readouterr()

    assert code == 0
    assert not errors
    assert calls >= 17  # the model was asked about every fault
    entries = json.loads(target.read_text(encoding="utf-8"))
    assert len(entries) == 17
    for entry in entries:
        assert "error" not in entry and "skipped" not in entry, entry
        assert len(entry["ranked"]) >= 3, entry


def test_a_dripping_endpoint_cannot_hold_a_reply_past_its_budget() -> None:
    """One byte every 0.2 s: every socket read is quick, only a whole-answer bound ends it."""
    from tests.fakes.hostile import HostileServer
    from thinkfl_operator.config.settings import LLMSettings
    from thinkfl_operator.engines.thinkfl.client import ChatClient, LLMTimedOut

    with HostileServer(every_s=0.2) as server:
        client = ChatClient(LLMSettings(base_url=server.root_url + "/drip/v1", retries=0, request_timeout_s=30))
        started = time.monotonic()
        with pytest.raises(LLMTimedOut):
            client.complete([{"role": "user", "content": "hello"}], time.monotonic() + 1.5)
        assert time.monotonic() - started < 1.5 + 0.5
