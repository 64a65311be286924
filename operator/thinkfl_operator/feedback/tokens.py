"""Salted tokens for the cluster's names, and the substitution that writes them into text.

A token depends only on the name, its kind and the salt (HMAC-SHA256), never on what else a
row knows, so the same name gives the same token in every row redacted with the same salt:

* service ``cartservice`` → ``svc-1a2b3c4d``; node ``node-6`` → ``node-5e6f7a8b``;
* pod ``cartservice-2`` → ``svc-1a2b3c4d-0c1d2e3f-4a5b6``: the token of the service its name
  says (``telemetry.naming.service_of_pod``), then a Deployment-like suffix, so the model still
  reads the service in the pod name (the topology, not the name, says who owns the pod);
* operation ``hipstershop.CartService/GetCart`` → ``op-3c9d1e.op-8a7b6c/op-5d4e3f``: each word
  hashed, the separators, HTTP and SQL verbs, ``api``, ``grpc``, versions and numbers kept, so a
  route keeps its shape (``GET /api/v1/op-…/op-…``) and shares words with its siblings.

In text, names are replaced longest first, in one pass (no token is rescanned):

* pods, nodes and operations as written, where the text around is not a name character
  (letter, digit, ``_`` or ``-``): ``cart`` inside ``redis-cart`` is left alone;
* services in any case, with or without ``-``/``_``/``.`` between their parts, and also without
  a short first part (``ts-order-service`` is also ``OrderService``), where the text around is
  not a letter, digit or ``-``, or at a CamelCase boundary: ``hipstershop.RecommendationService``,
  ``recommendationservice_latency``, ``RecommendationServiceClient`` all lose the service;
* the distinctive words of operation names (``ListRecommendations``, ``left_tickets``:
  CamelCase, ``_`` or digits) on their own, as in a model's reason.

A name the row does not know as one (a pod only a free-text note mentions) is not found.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from thinkfl_operator.core.models import TOOL_NAMES
from thinkfl_operator.feedback.names import Names
from thinkfl_operator.telemetry.naming import service_of_pod

Substitute = Callable[[str], str]

#: Words of operation names that say nothing about the cluster.
KEPT_WORDS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT",
                        "TRACE", "SELECT", "INSERT", "UPDATE", "api", "grpc", "http", "https",
                        "rpc"})
#: The tools' own keys and names: never replaced, even when an operation uses one as a word.
RESERVED = frozenset({"cmdb_id", "operation_name", "parent_span", "span_id", "status_code",
                      "trace_id", "regular_mean", "regular_std_dev", "current_mean",
                      "current_std_dev", "parent_span_id", "service_name", "root_causes",
                      *TOOL_NAMES, "tool_call"})
_WORD = re.compile(r"[A-Za-z0-9_]+")
_NUMBER = re.compile(r"v?\d+")
_SEPARATORS = re.compile(r"[-_.]+")
_STRICT = r"(?<![\w-]){}(?![\w-])"
_LOOSE = (r"(?:(?<![A-Za-z0-9-])|(?<=[a-z0-9])(?=[A-Z])){}"
          r"(?:(?![A-Za-z0-9-])|(?<=[a-z0-9])(?=[A-Z]))")


def digest(salt: str, kind: str, name: str, length: int) -> str:
    return hmac.new(salt.encode(), f"{kind}\0{name}".encode(), hashlib.sha256).hexdigest()[:length]


def fold(text: str) -> str:
    """A service spelling without case and separators: ``Order-Service`` → ``orderservice``."""
    return _SEPARATORS.sub("", text).lower()


@dataclass(frozen=True)
class Tokens:
    """Name → token: as written (pods, nodes, operations), by ``fold`` (services, with the
    pattern of each spelling), and the distinctive words of operations."""

    exact: dict[str, str]
    services: dict[str, str]
    spelled: tuple[tuple[int, str], ...]
    words: dict[str, str]

    def substitution(self) -> Substitute:
        """The function replacing every name in a text (see the module docstring)."""
        alternatives = sorted(self._alternatives(), key=lambda pair: (-pair[0], pair[1]))
        if not alternatives:
            return lambda text: text
        pattern = re.compile("|".join(regex for _, regex in alternatives))
        return lambda text: pattern.sub(lambda m: self._token(m.group()), text)

    def _alternatives(self) -> Iterator[tuple[int, str]]:
        for name in self.exact:
            yield len(name), _STRICT.format(re.escape(name))
        for length, spelling in self.spelled:
            yield length, _LOOSE.format(f"(?i:{spelling})")
        for word in self.words:
            yield len(word), _LOOSE.format(re.escape(word))

    def _token(self, text: str) -> str:
        found = self.exact.get(text) or self.services.get(fold(text)) or self.words.get(text)
        return found or text


def tokens_for(names: Names, salt: str) -> Tokens:
    """The tokens of every name in ``names``; a name of several kinds takes one token (pod over
    node over operation over service), so text and structure agree."""
    exact = {op: operation_token(op, salt) for op in names.operations}
    exact.update({node: node_token(node, salt) for node in names.nodes})
    exact.update({pod: pod_token(pod, salt) for pod in names.pods})
    services: dict[str, str] = {}
    spelled: list[tuple[int, str]] = []
    for service in sorted(names.services):
        for parts in spellings(service):
            if "".join(parts).lower() not in services:
                services["".join(parts).lower()] = service_token(service, salt)
                spelled.append((len("-".join(parts)), "[-_.]?".join(re.escape(p) for p in parts)))
    words = {w: word_token(w, salt) for op in names.operations for w in _WORD.findall(op)
             if _distinctive(w)}
    return Tokens(exact=exact, services=services, spelled=tuple(spelled), words=words)


def spellings(service: str) -> list[list[str]]:
    """The parts of a service name, and without a short first part (``ts-``) when two remain."""
    parts = [p for p in _SEPARATORS.split(service) if p]
    found = [parts] if parts else []
    if len(parts) >= 3 and len(parts[0]) <= 3:
        found.append(parts[1:])
    return found


def service_token(name: str, salt: str) -> str:
    return "svc-" + digest(salt, "service", name, 8)


def node_token(name: str, salt: str) -> str:
    return "node-" + digest(salt, "node", name, 8)


def pod_token(name: str, salt: str) -> str:
    suffix = digest(salt, "pod", name, 13)
    return f"{service_token(service_of_pod(name), salt)}-{suffix[:8]}-{suffix[8:]}"


def operation_token(name: str, salt: str) -> str:
    return _WORD.sub(lambda m: _word(m.group(), salt), name)


def word_token(word: str, salt: str) -> str:
    return "op-" + digest(salt, "operation", word, 6)


def _word(word: str, salt: str) -> str:
    return word if word in KEPT_WORDS or _NUMBER.fullmatch(word) else word_token(word, salt)


def _distinctive(word: str) -> bool:
    """A word of an operation name that is no plain English word: CamelCase inside, ``_``, or
    letters with digits."""
    if word in RESERVED or word in KEPT_WORDS or _NUMBER.fullmatch(word):
        return False
    return bool(re.search(r"[a-z][A-Z]", word) or "_" in word
                or (re.search(r"[A-Za-z]", word) and re.search(r"\d", word)))
