"""Read ThinkFL replies into tool calls, whatever shape the model gave them; never raises.

Forms read, in order of preference (the first that yields a call wins):

* ``<tool_call>{...}</tool_call>``, ``<tool_call>{...}<tool_call>`` (the trained closing tag) or
  no closing tag at all, several per reply;
* ``Action: name`` / ``Action Input: {...}`` and ``✿FUNCTION✿: name`` / ``✿ARGS✿: {...}`` lines;
* a bare call object (or the coordinator's ``str(list_of_calls)``) anywhere in the text.

Calls outside ``<think>`` blocks are preferred; when there are none, the blocks are read too.
Each object is decoded as JSON, as JSON without trailing commas, then as a Python literal
(single quotes, True/None, JSON's true/null), after closing what a truncated reply left open.
Arguments are then put in the tools' canonical shape (see ``_PARAMS`` and ``root_cause_dicts``).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
import reprlib
import warnings
from dataclasses import dataclass, field
from typing import Any

from thinkfl_operator.core.models import PRINT_RESULTS, SEARCH_METRICS, SEARCH_TRACES, TOOL_NAMES

_MAX_REPLY_CHARS = 100_000  # far above what max_tokens lets the model write
_LITERAL_CAP = 20_000  # ast.parse is only given objects up to this size
_MAX_CALLS = 16
_MAX_ATTEMPTS = 32  # objects tried per reader, so hostile text costs linear time
_MAX_PROBLEMS = 12
_BACKOFFS = 4  # partial trailing items dropped from a cut-short value
_NAME_ALIASES = {"print_result": PRINT_RESULTS, "search_trace": SEARCH_TRACES,
                 "search_fluctuating_metric": SEARCH_METRICS}
#: Canonical parameters of each tool and the keys accepted for them (matched case-insensitively).
_PARAMS: dict[str, dict[str, tuple[str, ...]]] = {
    SEARCH_TRACES: {"parent_span_id": ("parent_span_id", "span_id", "parent_span",
                                       "parentspanid", "spanid")},
    SEARCH_METRICS: {"service_name": ("service_name", "service", "pod",
                                      "servicename", "pod_name", "cmdb_id"),
                     "timestamp": ("timestamp", "time", "ts")},
}
_CAUSE_KEYS = {"node": ("node", "node_name", "host"), "service": ("service", "service_name"),
               "pod": ("pod", "pod_name", "cmdb_id", "instance"),
               "reason": ("reason", "reasons", "explanation", "evidence")}
_CAUSE_LISTS = ("root_causes", "root_cause", "rootcauses", "causes", "results")
_ARG_KEYS = ("arguments", "parameters", "args")

_TAG = re.compile(r"</?\s*tool_call\s*>", re.IGNORECASE)
_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_NAME_LINE = re.compile(r"^[ \t]*(?:Action|✿FUNCTION✿)[ \t]*:[ \t]*(.*)$", re.MULTILINE)
_ARGS_LINE = re.compile(r"^[ \t]*(?:Action Input|✿ARGS✿)[ \t]*:", re.MULTILINE)
_FENCE = re.compile(r"^\s*(?:```|~~~)?\s*(?:json|python|JSON)?\s*")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_TOKEN = re.compile(r"^[\w.:/@-]{1,200}$")
_NODE = re.compile(r"^node-?\d+$", re.IGNORECASE)
_POD = re.compile(r"-(?:\d+|[a-z0-9]{8,10}-[a-z0-9]{5})$")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_OPENING = re.compile(r"[{\[]")
_CLOSERS = {"{": "}", "[": "]"}
_JSON_NAMES = {"true": True, "false": False, "null": None, "none": None}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParsedReply:
    calls: list[ToolCall]
    problems: list[str]  # what could not be used, for logs and the corrective turn


class _Failed:
    """Marks a decode that read nothing (``None`` is a legitimate value)."""


_FAILED = _Failed()


@dataclass
class _Found:
    raw: list[tuple[Any, Any]] = field(default_factory=list)  # (name, arguments) as written
    problems: list[str] = field(default_factory=list)


# public entry points --------------------------------------------------------------------------

def parse_reply(text: str | None) -> ParsedReply:
    """Every tool call in ``text`` (in order) and notes on what could not be used."""
    try:
        return _parse(text)
    except Exception as exc:  # noqa: BLE001 - a reply must never crash the diagnosis
        return ParsedReply([], [f"internal parser error: {type(exc).__name__}"])


def root_cause_dicts(value: Any) -> list[dict[str, str]]:
    """Root causes in any shape the model writes them, as dicts with node/service/pod/reason."""
    return _causes(value, 0)


def normalize_name(raw: Any) -> str:
    """A tool name stripped of decoration; lower-cased only when that names a known tool."""
    name = str(raw).strip().strip("`'\" ").removesuffix("()").strip()
    key = re.sub(r"[\s-]+", "_", name.lower()).removeprefix("functions.")
    key = _NAME_ALIASES.get(key, key)
    return key if key in TOOL_NAMES else name


# reply → raw calls ----------------------------------------------------------------------------

def _parse(text: str | None) -> ParsedReply:
    if not isinstance(text, str) or not text.strip():
        return ParsedReply([], ["the reply is empty"])
    notes: list[str] = []
    if len(text) > _MAX_REPLY_CHARS:
        text = text[:_MAX_REPLY_CHARS]
        notes.append(f"the reply was cut to its first {_MAX_REPLY_CHARS} characters")
    found = _find(_outside_think(text))
    if not found.raw:
        found = _find(text)
    return _finish(found, notes)


def _outside_think(text: str) -> str:
    """The text with ``<think>`` blocks (and a head closed by an orphan ``</think>``) removed."""
    close, open_ = text.find("</think>"), text.find("<think>")
    if close >= 0 and (open_ < 0 or close < open_):
        text = text[close + len("</think>"):]
    return _THINK.sub(" ", text)


def _find(text: str) -> _Found:
    """The calls of the first form present; if none has calls, the problems of the first tried."""
    tried: list[_Found] = []
    for reader in (_tagged, _action_lines, _bare):
        tried.append(reader(text))
        if tried[-1].raw:
            return tried[-1]
    return next((found for found in tried if found.problems), tried[0])


def _tagged(text: str) -> _Found:
    found = _Found()
    for segment in _TAG.split(text, maxsplit=_MAX_ATTEMPTS)[1:_MAX_ATTEMPTS + 1]:
        body = _FENCE.sub("", segment, count=1)
        if not body.startswith(("{", "[")):
            continue
        value, _, cut_short = read_value(body, 0)
        _note_repair(found, cut_short, body)
        _collect(found, value, body)
    return found


def _action_lines(text: str) -> _Found:
    found = _Found()
    names = [(m.start(), m.group(1)) for m in _NAME_LINE.finditer(text)]
    for match in itertools.islice(_ARGS_LINE.finditer(text), _MAX_ATTEMPTS):
        before = [name for start, name in names if start < match.start()]
        if before:
            found.raw.append((before[-1], _leading_value(text[match.end():], found)))
    return found


def _bare(text: str) -> _Found:
    found = _Found()
    starts = [m.start() for m in itertools.islice(_OPENING.finditer(text), _MAX_ATTEMPTS)]
    resume = 0
    for start in starts:
        if start < resume:
            continue
        value, end, _ = read_value(text, start)
        calls = [c for c in _raw_calls(value) if _plausible(c)]
        if calls:
            found.raw.extend(calls)
            resume = end
    return found


def _plausible(call: tuple[Any, Any]) -> bool:
    """A bare object counts as a call only if it names a known tool."""
    return normalize_name(call[0]) in TOOL_NAMES


def _collect(found: _Found, value: Any, source: str) -> None:
    calls = _raw_calls(value)
    if calls:
        found.raw.extend(calls)
    else:
        found.problems.append(f"could not read a tool call from: {_clip(source)}")


def _leading_value(rest: str, found: _Found) -> Any:
    """What follows ``Action Input:``: a (possibly multi-line) object, else the rest of the line."""
    body = _FENCE.sub("", rest, count=1)
    if not body.startswith(("{", "[")):
        return rest.strip().split("\n", 1)[0].strip()
    value, _, cut_short = read_value(body, 0)
    _note_repair(found, cut_short, body)
    if isinstance(value, _Failed):
        found.problems.append(f"could not read the arguments: {_clip(body)}")
        return {}
    return value


def _note_repair(found: _Found, cut_short: bool, source: str) -> None:
    if cut_short:
        found.problems.append(f"a tool call was cut short and closed to read it: {_clip(source)}")


def _raw_calls(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        call = _raw_call(value)
        return [call] if call else []
    if isinstance(value, list):
        return [c for item in value if isinstance(item, dict) for c in _raw_calls(item)]
    return []


def _raw_call(obj: dict[Any, Any]) -> tuple[Any, Any] | None:
    inner = obj.get("function")
    if isinstance(inner, dict):
        obj = {**obj, **inner}
    name = next((obj[k] for k in ("name", "function", "tool", "tool_name")
                 if isinstance(obj.get(k), str) and obj[k].strip()), None)
    if name is None:
        return None
    key = next((k for k in _ARG_KEYS if k in obj), None)
    if key is not None:
        return name, obj[key]
    rest = {k: v for k, v in obj.items() if k not in ("name", "function", "tool", "tool_name",
                                                      "type", "id")}
    return name, rest


# raw calls → ToolCall ---------------------------------------------------------------------------

def _finish(found: _Found, notes: list[str]) -> ParsedReply:
    problems = notes + found.problems
    if not found.raw:
        problems.append("no tool call found in the reply")
    if len(found.raw) > _MAX_CALLS:
        problems.append(f"only the first {_MAX_CALLS} of {len(found.raw)} calls were kept")
    calls = [_tool_call(name, args, problems) for name, args in found.raw[:_MAX_CALLS]]
    if len(problems) > _MAX_PROBLEMS:
        problems[_MAX_PROBLEMS - 1:] = [f"{len(problems) - _MAX_PROBLEMS + 1} more problems"]
    return ParsedReply(calls, problems)


def _tool_call(raw_name: Any, raw_args: Any, problems: list[str]) -> ToolCall:
    name = normalize_name(raw_name)
    value = _unwrap(raw_args)
    if name == PRINT_RESULTS:
        return ToolCall(name, _print_results_args(value, problems))
    if name in _PARAMS:
        return ToolCall(name, _canonical(name, _as_mapping(name, value), problems))
    if not isinstance(value, dict):
        problems.append(f"{name}: arguments are not an object: {_preview(value)}")
        return ToolCall(name, {})
    return ToolCall(name, {str(k): v for k, v in value.items()})


def _unwrap(raw: Any) -> Any:
    """Arguments given as a JSON string, possibly encoded twice or three times.

    A string that decodes to a scalar stays a string: ``"123e4567"`` is a span id, not a float.
    """
    for _ in range(3):
        if not isinstance(raw, str):
            return raw
        decoded = lenient_load(raw)
        if not isinstance(decoded, (dict, list, tuple, str)):
            return raw
        raw = decoded
    return raw


def _as_mapping(tool: str, value: Any) -> dict[str, Any]:
    """Arguments as a dict; positional values (a bare id, a list) fill the parameters in order."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    params = list(_PARAMS[tool])
    if isinstance(value, (list, tuple)):
        return dict(zip(params, value, strict=False))
    if value is None or value == "":
        return {}
    return {params[0]: value}


def _canonical(tool: str, args: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    wanted = _PARAMS[tool]
    lowered = {k.strip().lower(): v for k, v in args.items()}
    out: dict[str, Any] = {}
    for key, aliases in wanted.items():
        value = next((lowered[a] for a in aliases if lowered.get(a) is not None), None)
        text = "" if value is None else as_text(value)
        if text:
            out[key] = text
        else:
            problems.append(f"{tool}: missing {key}")
    extra = sorted(set(lowered) - {a for group in wanted.values() for a in group})
    if extra:
        problems.append(f"{tool}: ignored argument(s) {', '.join(extra)}")
    return out


def _print_results_args(value: Any, problems: list[str]) -> dict[str, Any]:
    causes = root_cause_dicts(value)
    if not causes:
        problems.append(f"print_results: no usable root causes in {_preview(value)}")
    return {"root_causes": causes}


def as_text(value: Any) -> str:
    """An argument value as the string a tool expects (ids and timestamps never as floats)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return as_text(value[0])
    if isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return _preview(value)


# root causes ------------------------------------------------------------------------------------

def _causes(value: Any, depth: int) -> list[dict[str, str]]:
    if depth > 6:
        return []
    if isinstance(value, str):
        return _causes_from_text(value, depth)
    if isinstance(value, dict):
        return _causes_from_dict(value, depth)
    if isinstance(value, (list, tuple)):
        return [c for item in value for c in _causes(item, depth + 1)]
    return []


def _causes_from_text(text: str, depth: int) -> list[dict[str, str]]:
    decoded = lenient_load(text)
    if not isinstance(decoded, _Failed) and decoded != text:
        return _causes(decoded, depth + 1)
    parts = (_BULLET.sub("", p).strip().strip("'\"`") for p in re.split(r"[,;\n]", text))
    return [cause for p in parts if (cause := _classify(p)) is not None]


def _causes_from_dict(obj: dict[Any, Any], depth: int) -> list[dict[str, str]]:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in _CAUSE_LISTS:
        if key in lowered:
            return _causes(lowered[key], depth + 1)
    item = _cause_item(lowered)
    return [item] if item else []


def _cause_item(lowered: dict[str, Any]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for key, aliases in _CAUSE_KEYS.items():
        texts = (as_text(lowered[a]) for a in aliases if lowered.get(a) is not None)
        text = next((t for t in texts if t), "")
        if text:
            out[key] = text
    if not out.keys() & {"node", "service", "pod"}:
        named = next((v for k, v in lowered.items() if k in ("name", "component")), None)
        identity = _classify(named) if isinstance(named, str) else None
        out = {**identity, **out} if identity else {}
    return out or None


def _classify(text: str) -> dict[str, str] | None:
    """A bare name: ``node-6`` → node, ``cartservice-2`` → pod, anything else → service."""
    name = text.strip().strip("'\"`")
    if not _TOKEN.match(name):
        return None
    if _NODE.match(name) or "node" in name.lower():
        return {"node": name}
    if _POD.search(name):
        return {"pod": name}
    return {"service": name}


# lenient JSON -----------------------------------------------------------------------------------

def lenient_load(text: str) -> Any:
    """``text`` decoded as JSON or a Python literal, repaired if truncated; ``_FAILED`` if not."""
    body = _FENCE.sub("", text, count=1).strip()
    if body.startswith(("{", "[")):
        return read_value(body, 0)[0]
    return decode(body)


def read_value(text: str, start: int) -> tuple[Any, int, bool]:
    """The value opening at ``text[start]`` decoded, the index after it, and whether it was cut.

    A cut-short value is closed; if that does not decode, its last partial item is dropped
    (back to the previous comma) and closing is tried again, a few times.
    """
    chunk, end = extract_value(text, start)
    fragment = text[start:end]
    cut_short = chunk != fragment
    value = decode(chunk)
    for _ in range(_BACKOFFS if cut_short else 0):
        cut = fragment.rfind(",")
        if not isinstance(value, _Failed) or cut <= 0:
            break
        fragment = fragment[:cut]
        value = decode(extract_value(fragment, 0)[0])
    return value, end, cut_short


def extract_value(text: str, start: int) -> tuple[str, int]:
    """The bracketed value opening at ``text[start]`` and the index after it.

    Quotes of either kind are honoured; a value the reply cut short is closed (open string,
    then open brackets) so it can still be decoded.
    """
    stack: list[str] = []
    quote = ""
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            i += 2 if ch == "\\" else 1
            quote = "" if ch == quote else quote
            continue
        quote, closed = _step(ch, stack)
        if closed:
            return text[start:i + 1], i + 1
        i += 1
    return _close(text[start:], quote, stack), len(text)


def _step(ch: str, stack: list[str]) -> tuple[str, bool]:
    """One character outside strings: (opened quote, whether the outermost value closed)."""
    if ch in "\"'":
        return ch, False
    if ch in _CLOSERS:
        stack.append(_CLOSERS[ch])
    elif stack and ch == stack[-1]:
        stack.pop()
        return "", not stack
    return "", False


def _close(fragment: str, quote: str, stack: list[str]) -> str:
    if quote:
        fragment = fragment[:-1] if _odd_backslashes(fragment) else fragment
        fragment += quote
    fragment = fragment.rstrip().rstrip(",").rstrip()
    if fragment.endswith(":"):
        fragment += " null"
    return fragment + "".join(reversed(stack))


def _odd_backslashes(text: str) -> bool:
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def decode(text: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal; ``_FAILED`` if none."""
    candidates = [text]
    fixed = _TRAILING_COMMA.sub(r"\1", text)
    if fixed != text:
        candidates.append(fixed)
    for candidate in candidates:
        for reader in (_json, _literal):
            value = reader(candidate)
            if not isinstance(value, _Failed):
                return value
    return _FAILED


def _json(text: str) -> Any:
    try:
        return json.loads(text, strict=False)
    except (ValueError, RecursionError):
        return _FAILED


def _literal(text: str) -> Any:
    if len(text) > _LITERAL_CAP:
        return _FAILED
    try:
        with warnings.catch_warnings():  # invalid escapes in the model's strings warn
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
        return ast.literal_eval(_JsonNames().visit(tree))
    except (SyntaxError, ValueError, TypeError, OverflowError, MemoryError, RecursionError):
        return _FAILED


class _JsonNames(ast.NodeTransformer):
    """Lets a Python-literal read accept JSON's ``true``/``false``/``null``."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id.lower() in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id.lower()]), node)
        return node


def _preview(value: Any) -> str:
    """A short, depth-limited rendering of any decoded value, for problem notes."""
    return _clip(value if isinstance(value, str) else reprlib.repr(value))


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
