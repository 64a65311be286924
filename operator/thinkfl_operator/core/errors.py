"""Every error the package raises on purpose, in one tree.

    ThinkFLError                    base; never raised itself
    ├── UserInputError              the input is wrong; retrying will not help
    │   ├── DatasetError            a dataset file or folder is missing or malformed
    │   └── InvalidIncident         an incident (time, trace ID, window, engine) is invalid
    ├── NoEvidence                  the data holds nothing to diagnose (no spans in the window)
    ├── DeadlineExceeded            the diagnosis ran out of its time budget; not retried
    └── BackendError                a telemetry backend or the LLM failed; retryable
        ├── BackendUnavailable      (telemetry.http) no usable answer after retries; retryable
        ├── PrometheusUnavailable   (telemetry.prometheus) the same for Prometheus; retryable
        ├── LLMUnavailable          (engines.thinkfl.client) the same for the model; retryable
        ├── NotFound                (telemetry.http) 404: the trace does not exist
        ├── Refused                 the backend refused the request or answered nonsense:
        │                           BackendRejected, InvalidResponse, PrometheusQueryError,
        │                           LLMRejected; not retryable
        ├── LLMTimedOut             (engines.thinkfl.client) the model's budget ran out
        ├── NoAnswer                (engines.thinkfl.engine) the model gave no usable answer
        └── IncidentRejected        (kubeapi.incidents) the API server refused a new incident
                                    for good (4xx other than 409 and 429); not retryable

``retryable`` on each class tells callers (the operator, the CLI) whether to try again; a
``BackendError`` also names its ``backend`` and the status ``reason`` the operator writes when it
gives up.
"""

from __future__ import annotations


class ThinkFLError(Exception):
    """Base of every error raised on purpose by thinkfl_operator."""

    retryable = False


class UserInputError(ThinkFLError):
    """The input is wrong; the message names the file, field or value and what is wrong."""


class DatasetError(UserInputError):
    """A dataset file or folder is missing or malformed."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class InvalidIncident(UserInputError):
    """An incident's fields cannot be used (bad time, unknown trace, bad window)."""


class NoEvidence(ThinkFLError):
    """Nothing to diagnose: no spans around the incident time, or the trace is empty."""


class DeadlineExceeded(ThinkFLError):
    """One diagnosis took longer than its budget (``operator.deadline_s``); the message says
    what it was waiting for. Not retried: a retry would spend another whole budget."""


class BackendError(ThinkFLError):
    """A telemetry backend or the LLM endpoint failed; worth retrying later."""

    retryable = True
    #: Which one failed (jaeger, tempo, prometheus, llm), for reasons and metrics.
    backend = ""
    #: The Failed reason once the operator stops trying (CamelCase, for the status condition).
    reason = "BackendUnavailable"


class Refused(BackendError):
    """The backend refused the request (a 4xx that retrying will not change) or answered what
    cannot be used. The one home of the ``BackendRejected`` reason; each client's own error
    (``telemetry.http``, ``telemetry.prometheus``, ``engines.thinkfl.client``) derives from it."""

    retryable = False
    reason = "BackendRejected"


class IncidentRejected(BackendError):
    """The Kubernetes API refused to create an incident for good (a 4xx other than 409 Conflict
    and 429 Too Many Requests: invalid, too large, forbidden). Sending the same manifest again
    gets the same answer, so the webhook answers such an alert 200 and counts it."""

    retryable = False
    backend = "kubernetes"
    reason = "Rejected"
