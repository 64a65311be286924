"""ThinkFL replies in every shape the model produces become tool calls; no reply crashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.seed import seed_conversation
from thinkfl_operator.engines.thinkfl.parser import (
    ParsedReply,
    ToolCall,
    normalize_name,
    parse_reply,
    root_cause_dicts,
)

SEED_CAUSES = [
    {"service": "cartservice"}, {"pod": "cartservice-2"}, {"node": "node-6"},
    {"service": "redis-cart"}, {"service": "productcatalog-cart"}, {"pod": "cartservice-2"},
    {"service": "cartservice"}, {"node": "node-6"}, {"service": "cartservice"},
    {"service": "recommendationservice"}, {"service": "adservice"},
    {"service": "productcatalogservice"}, {"service": "currencyservice"},
]
SEED_CALLS = [
    ToolCall("search_traces", {"parent_span_id": "a260c8c867cf4b1c"}),
    ToolCall("search_traces", {"parent_span_id": "91486122a04fec40"}),
    ToolCall("search_traces", {"parent_span_id": "d55ed143102a3146"}),
    ToolCall("search_fluctuating_metrics",
             {"service_name": "cartservice", "timestamp": "1647758897785"}),
    ToolCall("print_results", {"root_causes": SEED_CAUSES}),
]
TRACES_A = ToolCall("search_traces", {"parent_span_id": "a260c8c867cf4b1c"})


def only_call(text: str) -> ToolCall:
    reply = parse_reply(text)
    assert len(reply.calls) == 1, reply
    return reply.calls[0]


# the seed conversation ------------------------------------------------------------------------

@pytest.mark.shared_data
def test_every_seed_assistant_turn_parses_to_its_call() -> None:
    turns = [m["content"] for m in seed_conversation() if m["role"] == "assistant"]
    replies = [parse_reply(t) for t in turns]
    assert [r.calls for r in replies] == [[c] for c in SEED_CALLS]
    assert all(r.problems == [] for r in replies)


# tags -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("closing", ["</tool_call>", "<tool_call>", "", "</tool_call>\n```"])
def test_closing_tag_may_be_proper_repeated_or_missing(closing: str) -> None:
    text = ('<tool_call>{"name": "search_traces", "arguments": {"parent_span_id": '
            f'"a260c8c867cf4b1c"}}}}{closing}')
    assert parse_reply(text) == ParsedReply([TRACES_A], [])


def test_several_calls_in_one_reply_come_back_in_order() -> None:
    text = (
        '<tool_call>{"name": "search_traces", "arguments": {"parent_span_id": "a"}}<tool_call>\n'
        '<tool_call>{"name": "search_fluctuating_metrics", "arguments": '
        '{"service_name": "cartservice", "timestamp": "1"}}<tool_call>\n'
        'and <tool_call>{"name": "search_traces", "arguments": {"parent_span_id": "b"}}</tool_call>'
    )
    calls = parse_reply(text).calls
    assert [c.name for c in calls] == ["search_traces", "search_fluctuating_metrics",
                                       "search_traces"]
    assert [c.arguments.get("parent_span_id") for c in calls] == ["a", None, "b"]


def test_code_fence_inside_the_tags_is_ignored() -> None:
    text = ('<tool_call>\n```json\n{"name": "search_traces", "arguments": '
            '{"parent_span_id": "a260c8c867cf4b1c"}}\n```\n</tool_call>')
    assert only_call(text) == TRACES_A


# arguments ------------------------------------------------------------------------------------

def test_arguments_as_an_object_or_a_json_string_or_double_encoded() -> None:
    inner = {"parent_span_id": "a260c8c867cf4b1c"}
    for arguments in (inner, json.dumps(inner), json.dumps(json.dumps(inner))):
        call = {"name": "search_traces", "arguments": arguments}
        assert only_call(f"<tool_call>{json.dumps(call)}</tool_call>") == TRACES_A


@pytest.mark.parametrize("key", ["parameters", "args"])
def test_parameters_and_args_are_aliases_of_arguments(key: str) -> None:
    text = (f'<tool_call>{{"name": "search_traces", "{key}": {{"parent_span_id": '
            '"a260c8c867cf4b1c"}}</tool_call>')
    assert only_call(text) == TRACES_A


def test_name_nested_under_function() -> None:
    text = ('<tool_call>{"function": {"name": "search_traces", "arguments": '
            '"{\\"parent_span_id\\": \\"a260c8c867cf4b1c\\"}"}}</tool_call>')
    assert only_call(text) == TRACES_A


def test_arguments_flat_beside_the_name() -> None:
    text = '<tool_call>{"name": "search_traces", "parent_span_id": "a260c8c867cf4b1c"}</tool_call>'
    assert only_call(text) == TRACES_A


@pytest.mark.parametrize("key", ["parent_span_id", "span_id", "parent_span"])
def test_search_traces_argument_aliases(key: str) -> None:
    text = f'<tool_call>{{"name": "search_traces", "arguments": {{"{key}": "a260c8c867cf4b1c"}}}}'
    assert only_call(text) == TRACES_A


@pytest.mark.parametrize(("service_key", "time_key"),
                         [("service_name", "timestamp"), ("service", "time"), ("pod", "timestamp")])
def test_metrics_argument_aliases_and_values_as_strings(service_key: str, time_key: str) -> None:
    text = (f'<tool_call>{{"name": "search_fluctuating_metrics", "arguments": '
            f'{{"{service_key}": "cartservice", "{time_key}": 1647758897785}}}}</tool_call>')
    assert only_call(text) == ToolCall("search_fluctuating_metrics",
                                       {"service_name": "cartservice", "timestamp": "1647758897785"})


def test_float_timestamp_and_bare_id_become_strings() -> None:
    metrics = only_call('<tool_call>{"name": "search_fluctuating_metrics", "arguments": '
                        '{"service_name": "cartservice", "timestamp": 1647758897.0}}</tool_call>')
    assert metrics.arguments["timestamp"] == "1647758897"
    traces = only_call('<tool_call>{"name": "search_traces", "arguments": "123e4567"}</tool_call>')
    assert traces.arguments == {"parent_span_id": "123e4567"}  # a hex id, not a float


def test_missing_and_unknown_arguments_are_reported() -> None:
    reply = parse_reply('<tool_call>{"name": "search_fluctuating_metrics", "arguments": '
                        '{"service_name": "cartservice", "colour": "red"}}</tool_call>')
    assert reply.calls == [ToolCall("search_fluctuating_metrics", {"service_name": "cartservice"})]
    assert any("missing timestamp" in p for p in reply.problems)
    assert any("colour" in p for p in reply.problems)


# python syntax --------------------------------------------------------------------------------

def test_python_dict_syntax_with_single_quotes_literals_and_trailing_commas() -> None:
    text = ("<tool_call>{'name': 'search_traces', 'arguments': {'parent_span_id': "
            "'a260c8c867cf4b1c', 'deep': True, 'page': None,},}<tool_call>")
    reply = parse_reply(text)
    assert reply.calls == [TRACES_A]


def test_json_literals_inside_single_quoted_dicts_and_trailing_commas_in_json() -> None:
    assert only_call("<tool_call>{'name': 'search_traces', 'arguments': {'parent_span_id': "
                     "'a260c8c867cf4b1c', 'x': true, 'y': null}}</tool_call>") == TRACES_A
    assert only_call('<tool_call>{"name": "search_traces", "arguments": {"parent_span_id": '
                     '"a260c8c867cf4b1c",},}</tool_call>') == TRACES_A


def test_the_coordinators_str_of_a_call_list_is_read() -> None:
    text = ("[{'function': {'name': 'search_traces', "
            "'arguments': '{\"parent_span_id\": \"a260c8c867cf4b1c\"}'}}]")
    assert only_call(text) == TRACES_A


# action lines ---------------------------------------------------------------------------------

def test_action_and_action_input_lines() -> None:
    text = ('Thought: the cart call is slow.\nAction: search_traces\n'
            'Action Input: {"parent_span_id": "a260c8c867cf4b1c"}\n')
    assert only_call(text) == TRACES_A


def test_action_input_spanning_lines_in_a_fence() -> None:
    text = ('Action: search_fluctuating_metrics\nAction Input: ```json\n'
            '{"service_name": "cartservice",\n "timestamp": "1647758897785"}\n```')
    assert only_call(text) == SEED_CALLS[3]


def test_qwen_function_and_args_markers_several_times() -> None:
    text = ('✿FUNCTION✿: search_traces\n✿ARGS✿: {"parent_span_id": "a260c8c867cf4b1c"}\n'
            '✿RESULT✿: []\n✿FUNCTION✿: print_results\n✿ARGS✿: {"root_causes": ["cartservice"]}')
    assert parse_reply(text).calls == [
        TRACES_A, ToolCall("print_results", {"root_causes": [{"service": "cartservice"}]})]


# think blocks ---------------------------------------------------------------------------------

def test_calls_inside_think_are_ignored_when_one_exists_outside() -> None:
    text = ('<think>Maybe <tool_call>{"name": "search_traces", "arguments": '
            '{"parent_span_id": "zzz"}}</tool_call> first?</think>\nText before. '
            '<tool_call>{"name": "search_traces", "arguments": {"parent_span_id": '
            '"a260c8c867cf4b1c"}}</tool_call> text after.')
    assert parse_reply(text).calls == [TRACES_A]


def test_a_call_only_inside_think_is_still_used() -> None:
    text = ('<think>I will search. <tool_call>{"name": "search_traces", "arguments": '
            '{"parent_span_id": "a260c8c867cf4b1c"}}</tool_call></think>\nDone thinking.')
    assert parse_reply(text).calls == [TRACES_A]


def test_an_orphan_closing_think_hides_the_reasoning_before_it() -> None:
    text = ('reasoning {"name": "search_traces", "arguments": {"parent_span_id": "zzz"}} '
            '</think><tool_call>{"name": "search_traces", "arguments": '
            '{"parent_span_id": "a260c8c867cf4b1c"}}<tool_call>')
    assert parse_reply(text).calls == [TRACES_A]


# truncation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cut", [
    '<tool_call>{"name": "search_traces", "arguments": {"parent_span_id": "a260c8c867cf4b1c"',
    '<tool_call>{"name": "search_traces", "arguments": {"parent_span_id": "a260c8c867cf4b1c"}',
    ('<tool_call>{"name": "search_traces", "arguments": "{\\"parent_span_id\\": '
     '\\"a260c8c867cf4b1c\\"'),
    "<tool_call>{'name': 'search_traces', 'arguments': {'parent_span_id': 'a260c8c867cf4b1c',",
])
def test_truncated_json_is_closed_and_read(cut: str) -> None:
    reply = parse_reply(cut)
    assert reply.calls == [TRACES_A]
    assert any("cut short" in p for p in reply.problems)


def test_truncated_print_results_keeps_the_complete_causes() -> None:
    text = ('<tool_call>{"name": "print_results", "arguments": {"root_causes": '
            '[{"service": "cartservice"}, {"pod": "cartservice-2"}, {"node": "no')
    causes = only_call(text).arguments["root_causes"]
    assert causes[:2] == [{"service": "cartservice"}, {"pod": "cartservice-2"}]


# names ----------------------------------------------------------------------------------------

def test_unknown_tools_are_returned_for_the_engine_to_refuse() -> None:
    reply = parse_reply('<tool_call>{"name": "restart_pod", "arguments": {"pod": "x-1"}}'
                        '</tool_call>')
    assert reply.calls == [ToolCall("restart_pod", {"pod": "x-1"})]


@pytest.mark.parametrize(("raw", "name"), [
    (" Search_Traces ", "search_traces"), ("`print_results`", "print_results"),
    ("print_result", "print_results"), ("functions.search_traces", "search_traces"),
    ("Search-Fluctuating-Metrics", "search_fluctuating_metrics"), ("RestartPod", "RestartPod"),
])
def test_names_are_normalized_only_towards_known_tools(raw: str, name: str) -> None:
    assert normalize_name(raw) == name


# root causes ----------------------------------------------------------------------------------

def test_root_causes_as_strings_are_classified() -> None:
    text = ('<tool_call>{"name": "print_results", "arguments": {"root_causes": '
            '["cartservice", "node-6", "cartservice-2", "ts-x-service-5dc8d4f9fd-llznp", '
            '"redis-cart", "node3"]}}</tool_call>')
    assert only_call(text).arguments["root_causes"] == [
        {"service": "cartservice"}, {"node": "node-6"}, {"pod": "cartservice-2"},
        {"pod": "ts-x-service-5dc8d4f9fd-llznp"}, {"service": "redis-cart"}, {"node": "node3"}]


@pytest.mark.parametrize("value", [
    [{"service": "cartservice", "reason": "cpu"}],
    {"service": "cartservice", "reason": "cpu"},
    {"root_causes": [{"service": "cartservice", "reason": "cpu"}]},
    {"root_causes": {"root_causes": [{"service_name": "cartservice", "reason": "cpu"}]}},
    '[{"service": "cartservice", "reason": "cpu"}]',
    json.dumps(json.dumps({"root_causes": [{"service": "cartservice", "reason": "cpu"}]})),
])
def test_root_cause_shapes(value: object) -> None:
    assert root_cause_dicts(value) == [{"service": "cartservice", "reason": "cpu"}]


def test_root_cause_values_become_strings_and_empty_ones_are_dropped() -> None:
    assert root_cause_dicts([{"node": "node-6", "pod": "", "reason": None, "score": 3},
                             {"reason": "no name"}, 7, None, "two words"]) == [{"node": "node-6"}]
    assert root_cause_dicts("cartservice, node-6") == [{"service": "cartservice"},
                                                       {"node": "node-6"}]


def test_print_results_with_a_list_as_arguments_and_nothing_usable() -> None:
    listed = only_call('<tool_call>{"name": "print_results", "arguments": '
                       '[{"pod": "cartservice-2"}]}</tool_call>')
    assert listed.arguments == {"root_causes": [{"pod": "cartservice-2"}]}
    empty = parse_reply('<tool_call>{"name": "print_results", "arguments": {}}</tool_call>')
    assert empty.calls == [ToolCall("print_results", {"root_causes": []})]
    assert any("no usable root causes" in p for p in empty.problems)


# no call --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [None, "", "   ", "The root cause is cartservice.",
                                  "<tool_call>not json</tool_call>", "<tool_call>{{{{</tool_call>"])
def test_replies_without_a_usable_call_say_so(text: str | None) -> None:
    reply = parse_reply(text)
    assert reply.calls == [] and reply.problems


# properties -----------------------------------------------------------------------------------

def _assert_well_formed(reply: ParsedReply) -> None:
    assert isinstance(reply.calls, list) and isinstance(reply.problems, list)
    assert all(isinstance(c, ToolCall) and isinstance(c.arguments, dict) for c in reply.calls)
    assert all(isinstance(p, str) for p in reply.problems)
    assert not any(p.startswith("internal parser error") for p in reply.problems)
    for call in reply.calls:
        if call.name == "print_results":
            assert all(set(c) <= {"node", "service", "pod", "reason"}
                       for c in call.arguments["root_causes"])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_without_raising(text: str) -> None:
    _assert_well_formed(parse_reply(text))


FRAGMENTS = st.sampled_from([
    "<tool_call>", "</tool_call>", "<think>", "</think>", "{", "}", "[", "]", '"', "'", ":", ",",
    "\\", "\\\"", "\n", " ", '"name"', "'name'", '"arguments"', "'arguments'", '"parameters"',
    '"function"', '"root_causes"', '"parent_span_id"', '"service_name"', '"timestamp"',
    "search_traces", '"search_traces"', "search_fluctuating_metrics", '"print_results"',
    "print_results", "Action: ", "Action Input: ", "✿FUNCTION✿: ", "✿ARGS✿: ", "```json",
    "True", "null", "None", "1647758897785", "1e400", "node-6", "cartservice-2", '"a26"',
    '{"name": "search_traces", "arguments": ', '"{\\"parent_span_id\\": \\"x\\"}"',
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=3)), max_size=40).map("".join))
def test_fragment_soup_parses_without_raising(text: str) -> None:
    _assert_well_formed(parse_reply(text))


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=12))
def test_root_cause_dicts_accepts_any_json_value(value: object) -> None:
    causes = root_cause_dicts(value)
    assert all(set(c) <= {"node", "service", "pod", "reason"} for c in causes)
    assert all(isinstance(v, str) and v for c in causes for v in c.values())
