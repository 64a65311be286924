"""The self-refinement core: SRE labels, grading, diagnosis records and recorded tool answers."""

from __future__ import annotations

import base64
import gzip
import json
import random
from functools import cache
from typing import Any

import pytest

from tests.records import as_version_1
from thinkfl_operator.config.settings import Settings
from thinkfl_operator.core.models import Diagnosis, Incident, RootCause, Topology
from thinkfl_operator.demo.synthetic import generate
from thinkfl_operator.engines.heuristic.engine import HeuristicEngine
from thinkfl_operator.engines.thinkfl import prompt
from thinkfl_operator.evidence.toolbox import tool_call_text
from thinkfl_operator.feedback.conversations import split_transcript
from thinkfl_operator.feedback.grading import grade_answer, grade_status
from thinkfl_operator.feedback.label import (
    ANNOTATION,
    Feedback,
    InvalidFeedback,
    feedback_of,
    from_annotation,
    from_spec,
    validate,
)
from thinkfl_operator.feedback.opening import root_of
from thinkfl_operator.feedback.record import (
    MAX_RECORD_CHARS,
    OMITTED,
    InvalidRecord,
    build_record,
    decode_record,
    encode_record,
    topology_of,
)
from thinkfl_operator.feedback.replay import NOT_RECORDED, RecordedTools, recorded_answers

TOPO = Topology(
    pods={"cartservice-0": "cartservice", "cartservice-2": "cartservice",
          "frontend-2": "frontend", "adservice-0": "adservice"},
    nodes={"cartservice-0": "node-5", "cartservice-2": "node-6", "frontend-2": "node-1"},
)


def _cause(rank: int, service: str, pod: str = "", node: str = "") -> RootCause:
    return RootCause(rank=rank, node=node, service=service, pod=pod, reason="", score=100 - rank)


@cache
def deterministic() -> tuple[Diagnosis, Incident]:
    """The deterministic engine's diagnosis of the synthetic network-delay incident."""
    synthetic = generate(fault="network_delay", service="recommendationservice")
    incident = Incident(time_s=synthetic.time_s, description="latency alert")
    return HeuristicEngine(Settings()).diagnose(synthetic.store(), incident), incident


# labels -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("service/cartservice", Feedback(service="cartservice")),
    ("  pod / cartservice-2 ", Feedback(pod="cartservice-2")),
    ("node/node-6\n", Feedback(node="node-6")),
])
def test_annotation_forms(text: str, expected: Feedback) -> None:
    label = from_annotation(text)
    assert label == expected
    assert label.origin == ANNOTATION


@pytest.mark.parametrize("text", ["svc:foo", "service/", "cartservice", "service/a/b", "rack/r1"])
def test_unknown_annotation_form_is_named(text: str) -> None:
    with pytest.raises(InvalidFeedback) as caught:
        from_annotation(text)
    assert str(caught.value) == (f"thinkfl.dev/root-cause {json.dumps(text)} is not "
                                 "service/NAME, pod/NAME or node/NAME")


def test_spec_form_reads_every_field_and_strips_names() -> None:
    label = from_spec({"pod": " cartservice-2 ", "faultType": "network_delay",
                       "note": "tc qdisc on the node", "by": "alice"})
    assert label == Feedback(pod="cartservice-2", fault_type="network_delay",
                             note="tc qdisc on the node", by="alice")
    assert from_spec(None) is None


def test_spec_without_a_cause_is_refused() -> None:
    with pytest.raises(InvalidFeedback, match="spec.feedback names no root cause: give "
                       "spec.feedback.service, spec.feedback.pod or spec.feedback.node"):
        from_spec({"note": "it was the network"})


def test_spec_problems_are_all_named() -> None:
    with pytest.raises(InvalidFeedback) as caught:
        from_spec({"pod": 3, "rootCause": "x"})
    message = str(caught.value)
    assert "spec.feedback.rootCause is not a feedback field" in message
    assert "spec.feedback.pod 3 is not a string" in message
    with pytest.raises(InvalidFeedback, match="must be an object"):
        from_spec("service/cartservice")  # type: ignore[arg-type]


def test_spec_wins_over_the_annotation() -> None:
    annotations = {ANNOTATION: "service/frontend"}
    assert feedback_of({"feedback": {"service": "cartservice"}}, annotations) == \
        Feedback(service="cartservice")
    assert feedback_of({"traceID": "ab"}, annotations) == Feedback(service="frontend")
    assert feedback_of({}, {"other": "x"}) is None


def test_a_pod_brings_its_service_and_node() -> None:
    assert validate(Feedback(pod="cartservice-2", note="n"), TOPO) == \
        Feedback(pod="cartservice-2", service="cartservice", node="node-6", note="n")
    assert validate(Feedback(service="cartservice"), TOPO) == Feedback(service="cartservice")
    assert validate(Feedback(node="node-5"), TOPO) == Feedback(node="node-5")


def test_an_unobserved_service_is_named_with_what_was_observed() -> None:
    many = Topology(pods={f"svc{i:02d}-0": f"svc{i:02d}" for i in range(12)} | TOPO.pods)
    with pytest.raises(InvalidFeedback) as caught:
        validate(Feedback(service="cartsvc"), many)
    assert str(caught.value) == (
        'spec.feedback.service "cartsvc" is not in this incident\'s observed topology '
        "(services: adservice, cartservice, frontend, svc00, svc01, svc02, svc03, svc04…); "
        'did you mean "cartservice"?')


def test_unobserved_pod_and_node_name_their_field_and_origin() -> None:
    with pytest.raises(InvalidFeedback, match=r'^thinkfl.dev/root-cause pod "cart-9" is not in '
                       r"this incident's observed topology \(pods: adservice-0, cartservice-0, "):
        validate(from_annotation("pod/cart-9"), TOPO)
    with pytest.raises(InvalidFeedback, match=r'spec.feedback.node "node-9" .* \(nodes: node-1, '
                       r"node-5, node-6\)"):
        validate(Feedback(node="node-9"), TOPO)


def test_a_label_contradicting_its_pod_is_refused() -> None:
    with pytest.raises(InvalidFeedback, match='spec.feedback.service "frontend" contradicts '
                       'spec.feedback.pod "cartservice-2", whose service is "cartservice"'):
        validate(Feedback(pod="cartservice-2", service="frontend"), TOPO)


# grading ----------------------------------------------------------------------------------------

ANSWER = [_cause(1, "frontend", "frontend-2", "node-1"),
          _cause(2, "cartservice", "cartservice-0", "node-5"),
          _cause(3, "adservice"), _cause(4, "cartservice", "cartservice-2", "node-6")]


def test_rank_is_the_true_service_rank_and_the_status_is_integers() -> None:
    label = validate(Feedback(pod="cartservice-2"), TOPO)
    graded = grade_answer(ANSWER, label)
    assert graded.rank == 2  # service level, as R@k counts it (the pod itself is 4th)
    status = grade_status(graded)
    # 0.1·1 + 0.4·½ + 0.3·¼ + 0.2·¼ = 0.425
    assert status == {"score": 42, "rank": 2, "matched": ["format", "service", "pod", "node"],
                      "factors": {"format": 100, "service": 50, "pod": 25, "node": 25}}
    assert all(type(v) is int for v in [status["score"], *status["factors"].values()])


def test_a_missed_service_has_no_rank_even_when_its_node_was_named() -> None:
    graded = grade_answer(ANSWER[:1], Feedback(service="cartservice", node="node-1"))
    status = grade_status(graded)
    assert graded.rank is None and "rank" not in status
    assert status["matched"] == ["node"]
    assert status["factors"]["format"] == 0


def test_a_node_label_ranks_the_node() -> None:
    assert grade_status(grade_answer(ANSWER, Feedback(node="node-5")))["rank"] == 2


# records ----------------------------------------------------------------------------------------

def test_deterministic_record_rebuilds_one_conversation_per_walked_trace() -> None:
    diagnosis, incident = deterministic()
    record = build_record(diagnosis, incident)
    assert record["version"] == 2 and record["truncated"] is False
    assert record["incident"] == {"time": "2026-11-01T10:40:00Z", "traceID": "", "service": "",
                                  "description": "latency alert"}
    assert (record["engine"], record["model"]) == ("heuristic", "")
    assert record["answer"][0] == {"rank": 1, "service": "recommendationservice",
                                   "pod": diagnosis.root_causes[0].pod,
                                   "node": diagnosis.root_causes[0].node, "score": 100,
                                   "padded": False}
    # The topology is a list of fixed-key objects, not maps keyed by the cluster's names.
    assert all(set(e) == {"pod", "service", "node"} for e in record["topology"])
    assert [e["pod"] for e in record["topology"]] == sorted(diagnosis.topology.pods)
    assert len(record["answer"]) == len(diagnosis.root_causes)
    assert topology_of(record) == diagnosis.topology
    conversations = record["conversations"]
    assert len(diagnosis.roots) == len(diagnosis.traces) == len(conversations) == 2
    final = diagnosis.steps[-1]
    for conversation, root in zip(conversations, diagnosis.roots, strict=True):
        assert conversation[:2] == [{"role": "system", "content": prompt.SYSTEM_PROMPT},
                                    {"role": "user", "content": prompt.first_user_message(root)}]
        roles = [m["role"] for m in conversation[2:]]
        assert roles == ["assistant", "tool"] * (len(roles) // 2) + ["assistant"]
        assert conversation[2]["content"] == tool_call_text(
            "search_traces", {"parent_span_id": root.span_id})
        assert conversation[-1]["content"] == tool_call_text(final.tool, final.arguments)
        assert root_of(conversation[1]["content"], diagnosis.topology.pods) == root
    # Every step's answer is in a tool turn; the incident-wide calls close each conversation.
    tools = [m["content"] for c in conversations for m in c if m["role"] == "tool"]
    walked = [s for s in diagnosis.steps if s.tool == "search_traces"]
    shared = [s for s in diagnosis.steps if s.tool == "search_fluctuating_metrics"]
    assert sorted(tools) == sorted([s.output for s in walked] + [s.output for s in shared] * 2)


def test_model_transcript_splits_at_each_system_prompt() -> None:
    first = [{"role": "system", "content": "S"}, {"role": "user", "content": "root 1"},
             {"role": "assistant", "content": "a"}]
    second = [{"role": "system", "content": "S"}, {"role": "user", "content": "root 2"}]
    assert split_transcript(first + second) == [first, second]


def test_round_trip_is_ascii_and_deterministic() -> None:
    record = build_record(*deterministic())
    text = encode_record(record)
    assert text.isascii() and text == encode_record(record)
    assert decode_record(text) == record
    assert len(text) < MAX_RECORD_CHARS


def _packed(payload: bytes) -> str:
    # mtime 0: the same text in every process (the test IDs below hold it; pytest-xdist's
    # workers must collect the same IDs)
    return base64.b64encode(gzip.compress(payload, mtime=0)).decode()


@pytest.mark.parametrize(("text", "reason"), [
    ("not a record!", "this text is not base64"),
    ("", "the record's gzip data is cut short"),
    (base64.b64encode(b"plain bytes").decode(), "the record is not gzip data"),
    (_packed(b"{not json"), "the record unpacks to text that is not JSON"),
    (_packed(b"[1, 2]"), "a record is a JSON object, not list"),
    (_packed(b'{"version": 3}'), "record version 3 is not supported (this operator reads versions 1, 2)"),
    (_packed(b'{"version": 1, "incident": {}, "engine": "x", "model": "", "conversations": [],'
             b' "answer": []}'), "the record's topology needs 'pods' and 'nodes' objects"),
    (_packed(b'{"version": 2, "incident": {}, "engine": "x", "model": "", "conversations": [],'
             b' "answer": [], "topology": {"pods": {}, "nodes": {}}, "truncated": false}'),
     "the record's 'topology' is not a list of {pod, service, node} objects"),
    (_packed(b'{"version": 2, "incident": {}, "engine": "x", "model": "", "conversations": [],'
             b' "answer": [], "topology": []}'), "the record's 'truncated' is missing"),
    (_packed(b'{"version": 1, "incident": {}, "engine": "x", "model": "", "answer": [],'
             b' "topology": {"pods": {}, "nodes": {}}, "conversations": [[{"role": "bot"}]]}'),
     "the record's conversation 1 is not a list of"),
    (_packed(b'{"version": 2, "incident": {}, "engine": "x", "model": "", "conversations": [],'
             b' "answer": [{"rank": "1"}], "topology": [], "truncated": false}'),
     "the record's answer is not a list of {rank: integer"),
])
def test_garbage_is_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidRecord) as caught:
        decode_record(text)
    assert reason in str(caught.value)


def _noise(chars: int, seed: int) -> str:
    """Hex that gzip cannot shrink much."""
    return random.Random(seed).randbytes(chars // 2).hex()


def _talk(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "S"}, {"role": "user", "content": question},
            {"role": "assistant", "content": question}, {"role": "tool", "content": answer}]


def _record(*conversations: list[dict[str, str]]) -> dict[str, Any]:
    return {"version": 2, "incident": {"time": "", "traceID": "", "service": "", "description": ""},
            "engine": "thinkfl", "model": "ThinkFL", "conversations": list(conversations),
            "answer": [], "topology": [], "truncated": False}


def test_a_big_record_loses_the_longest_conversations_tool_answers_first() -> None:
    short, long = _talk("q1", _noise(10_000, 1)), _talk("q2", _noise(20_000, 2))
    record = _record(short, long)
    assert len(encode_record(record)) > 12_000
    text = encode_record(record, max_chars=12_000)
    assert len(text) <= 12_000
    decoded = decode_record(text)
    assert decoded["truncated"] is True
    assert decoded["conversations"] == [short, long[:3] + [{"role": "tool", "content": OMITTED}]]
    assert record["truncated"] is False  # the caller's record is left alone


def test_a_record_still_too_big_drops_whole_conversations() -> None:
    chatty = _talk(_noise(8_000, 3), _noise(4_000, 4))
    small = _talk("q", _noise(4_000, 5))
    decoded = decode_record(encode_record(_record(chatty, small), max_chars=3_000))
    assert decoded["conversations"] == [small[:3] + [{"role": "tool", "content": OMITTED}]]


# recorded tool answers --------------------------------------------------------------------------

def test_recorded_tools_answer_from_the_record_and_say_what_is_missing() -> None:
    metrics = '{"node-1.frontend-2.cpu": {"regular_mean": 1.0}}'
    conversation = [
        {"role": "system", "content": "S"}, {"role": "user", "content": "root"},
        {"role": "assistant", "content": tool_call_text("search_traces", {"parent_span_id": "ab"})},
        {"role": "tool", "content": "[]"},
        {"role": "assistant", "content": tool_call_text(
            "search_fluctuating_metrics", {"service_name": "frontend", "timestamp": "1647758897785"})},
        {"role": "tool", "content": metrics},
        {"role": "assistant", "content": tool_call_text("search_traces", {"parent_span_id": "cd"})},
        {"role": "tool", "content": prompt.FINAL_ONLY},  # a refusal is not an answer
    ]
    tools = RecordedTools(recorded_answers(_record(conversation)))
    assert tools.search_traces(" ab ")[1] == "[]"
    assert tools.search_fluctuating_metrics("frontend", 1647758897)[1] == metrics  # s, not ms
    missing = tools.search_traces("cd")[1]
    assert json.loads(missing.split("\n")[0]) == []
    assert missing == f"[]\n(the child spans of cd are {NOT_RECORDED})"
    other = tools.search_fluctuating_metrics("adservice", "1647758897785")[1]
    assert other.startswith("{}\n(") and NOT_RECORDED in other
    assert [s.summary for s in tools.steps] == ["answered from the record"] * 2 + [NOT_RECORDED] * 2


# schema version 1 and padding ------------------------------------------------------------------

def test_a_version_1_status_record_is_still_read_as_version_2() -> None:
    record = build_record(*deterministic())
    old = _packed(json.dumps(as_version_1(record)).encode())
    no_usage = {"llmCalls": 0, "promptTokens": 0, "completionTokens": 0, "toolCalls": 0, "stages": []}
    assert decode_record(old) == {**record, "incident": {**record["incident"], "time": ""},
                                  "usage": no_usage}  # version 1 had no usage
    assert topology_of(decode_record(old)) == deterministic()[0].topology


def _answered(*services: str) -> list[dict[str, str]]:
    """One model conversation ending with print_results naming ``services``."""
    causes = [{"service": s, "reason": "slow"} for s in services]
    return [{"role": "system", "content": prompt.SYSTEM_PROMPT},
            {"role": "user", "content": "root span"},
            {"role": "assistant", "content": tool_call_text("search_traces", {"parent_span_id": "a"})},
            {"role": "tool", "content": "[]"},
            {"role": "assistant", "content": tool_call_text("print_results", {"root_causes": causes})}]


def _model_diagnosis(*answers: list[str]) -> Diagnosis:
    """A ThinkFL diagnosis whose conversations answered ``answers``, ranked as the engine
    ranks them: fused, then padded with a deterministic order up to three."""
    from thinkfl_operator.core.models import Candidate
    from thinkfl_operator.engines.ranking import rank
    from thinkfl_operator.engines.thinkfl.engine import fuse
    from thinkfl_operator.feedback.legacy import first_answer

    conversations = [_answered(*services) for services in answers]
    candidates = fuse([first_answer(c) for c in conversations])
    padding = [Candidate(service="adservice"), Candidate(service="cartservice"),
               Candidate(service="frontend")]
    return Diagnosis(root_causes=rank(candidates, TOPO, fallback=padding, minimum=3),
                     engine="thinkfl", model="ThinkFL",
                     transcript=[m for c in conversations for m in c], topology=TOPO)


@pytest.mark.parametrize(("answers", "named"), [
    ([["cartservice"]], ["cartservice"]),
    ([["cartservice"], ["frontend", "cartservice"]], ["cartservice", "frontend"]),
    ([["frontend", "cartservice", "adservice"]], ["frontend", "cartservice", "adservice"]),
])
def test_the_record_says_which_entries_the_model_named_and_which_are_padding(
        answers: list[list[str]], named: list[str]) -> None:
    diagnosis = _model_diagnosis(*answers)
    record = build_record(diagnosis, Incident(time_s=None))
    assert len(record["answer"]) == 3
    assert [a["service"] for a in record["answer"] if not a["padded"]] == named
    assert all(a["padded"] for a in record["answer"][len(named):])
    # A version-1 record did not say: the padding is found again from its conversations.
    old = decode_record(_packed(json.dumps(as_version_1(record)).encode()))
    assert [a["padded"] for a in old["answer"]] == [a["padded"] for a in record["answer"]]


def test_a_deterministic_answer_has_no_padding_in_either_version() -> None:
    record = build_record(*deterministic())
    old = decode_record(_packed(json.dumps(as_version_1(record)).encode()))
    assert not any(a["padded"] for a in record["answer"] + old["answer"])
