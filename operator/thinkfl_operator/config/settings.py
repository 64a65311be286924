"""The one settings object: environment variables prefixed ``THINKFL_``.

Nested values use ``__`` (``THINKFL_HEURISTIC__WINDOW_SECONDS=240``). Secrets may also come from
files in ``/etc/thinkfl/secrets`` (one file per variable name), as Kubernetes mounts them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from thinkfl_operator.core.errors import UserInputError

SECRETS_DIR = Path("/etc/thinkfl/secrets")


class EvidenceSettings(BaseModel):
    """How the three tools look at the data."""

    baseline_minutes: float = Field(20.0, gt=0, description="Baseline half-width of search_fluctuating_metrics (reference: 20).")
    current_minutes: float = Field(10.0, gt=0, description="Window half-width of search_fluctuating_metrics (reference: 10).")
    sigma: float = Field(3.0, gt=0, description="How many baseline standard deviations make a fluctuation.")
    max_tool_chars: int = Field(6000, ge=200, description="Cap on the characters of one tool answer.")


class HeuristicSettings(BaseModel):
    """The deterministic engine's windows."""

    window_seconds: float = Field(180.0, gt=0, description="Seconds after the incident time searched for anomalous spans.")
    lead_seconds: float = Field(0.0, ge=0, description="Seconds before the incident time also counted as incident window.")
    baseline_minutes: float = Field(30.0, gt=0, description="Minutes of spans on each side of the window used as the normal baseline.")
    guard_seconds: float = Field(30.0, ge=0, description="Seconds between the window and the baseline left out of both.")
    max_traces: int = Field(2, ge=1, le=50, description="Anomalous traces walked with the tools for the diagnostic path.")
    min_candidates: int = Field(3, ge=3, description="Fewest ranked candidates returned (padded with the next best).")


class LLMSettings(BaseModel):
    """The ThinkFL model behind an OpenAI-compatible endpoint (vLLM ``--served-model-name ThinkFL``)."""

    base_url: str = Field("", description="OpenAI-compatible base URL ending in /v1, e.g. http://thinkfl-vllm:8000/v1; empty = no LLM.")
    model: str = Field("ThinkFL", description="Served model name.")
    api_key: SecretStr = Field(SecretStr(""), description="API key; vLLM needs none (a placeholder is sent).")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(1024, ge=16, description="Completion tokens per reply.")
    request_timeout_s: float = Field(30.0, gt=0, description="Timeout of one chat completion request.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed request (connection, timeout, 5xx, 429).")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry, at most 8 s, jittered down by up to half; a Retry-After is waited out (telemetry/transport.py).")
    deadline_s: float = Field(90.0, gt=0, description="Wall-clock budget of one incident's conversation(s).")
    think_steps: int = Field(6, ge=1, description="Replies in the think stage (search_traces only).")
    rethink_steps: int = Field(6, ge=0, description="Replies in the rethink stage (traces and metrics).")
    final_steps: int = Field(2, ge=1, description="Replies allowed to produce print_results at the end.")
    max_traces: int = Field(1, ge=1, le=10, description="Anomalous traces diagnosed per incident (rankings merged).")


class TracesSettings(BaseModel):
    """The tracing backend the live evidence comes from."""

    backend: str = Field("jaeger", pattern="^(jaeger|tempo)$", description="Tracing backend: jaeger or tempo.")
    url: str = Field("", description="Base URL of Jaeger query (e.g. http://jaeger-query:16686) or Tempo (http://tempo:3200); empty = none.")
    api: str = Field("auto", pattern="^(auto|v1|v3)$", description="Jaeger API to use: v1 JSON, v3 OTLP, or auto (v3, then v1).")
    search_limit: int = Field(50, ge=1, le=10000, description="Traces fetched per search slice near the incident (per service): bounds the work whatever the span rate.")
    baseline_limit: int = Field(50, ge=1, le=10000, description="Traces fetched per search slice of the baseline, away from the incident (per service).")
    search_slice_s: float = Field(300.0, gt=0, description="Searches cover the window in slices of this many seconds (spreads the sample over time).")
    max_requests: int = Field(40, ge=4, le=10000, description="Most requests to the tracing backend per diagnosis (searches, trace fetches and retries): the searches nearest the incident go first, and what does not fit is skipped and counted in the notes.")
    tempo_baseline: str = Field("auto", pattern="^(auto|span_sets|traces)$", description="With Tempo, where the normal baseline comes from when Prometheus has no span metrics: auto (Tempo's TraceQL metrics, /api/metrics/query on Tempo 2.6+ with a metrics-generator or Tempo 3, one request per side of the incident window; else the span sets of three searches per side, every span of up to baseline_limit traces per search slice, without fetching them; else fetched traces), span_sets (the span sets, else fetched traces) or traces (a sample of whole traces fetched one request each, as before). On 2023-01-30 (17 faults, 40 requests) Tempo found 16/17 top causes from TraceQL metrics, 16/17 from span sets and 5/17 from fetched traces (bench/live_budget.py). Each step that Tempo refuses or fails is said in the notes.")
    max_spans: int = Field(200_000, ge=1000, description="Most spans one diagnosis keeps from the tracing backend (whole traces, nearest the incident first); memory stays bounded whatever the backend returns.")
    timeout_s: float = Field(10.0, gt=0, description="Most seconds one request to the tracing backend may take, connect and whole body.")
    max_body_mb: float = Field(32.0, gt=0, description="Largest answer read from the tracing backend (MiB, decoded); a larger one is refused.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed request (connection, timeout, 5xx, 429).")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry, at most 8 s, jittered down by up to half; a Retry-After is waited out (telemetry/transport.py).")


class PrometheusSettings(BaseModel):
    """Prometheus and the KPIs read from it (the metrics tool's series)."""

    url: str = Field("", description="Prometheus base URL, e.g. http://prometheus-server.monitoring:9090; empty = no metrics.")
    catalog: dict[str, str] = Field(default_factory=dict, description="KPI name → PromQL with {pods} (and {namespace}); empty = the built-in Kubernetes catalog.")
    step_s: float = Field(60.0, gt=0, description="Resolution of range queries.")
    span_metrics: str = Field("auto", pattern="^(auto|on|off)$", description="Read the normal baseline from span metrics when Prometheus has them (OpenTelemetry spanmetrics connector, Tempo metrics-generator, Jaeger SPM) instead of searching baseline traces: on, off, or auto (on with Tempo, off with Jaeger). On 2023-01-30 (17 faults, 40 requests) Tempo found 16/17 top causes with them (as from its own TraceQL metrics or span sets, traces.tempo_baseline) and 5/17 from fetched baseline traces, as Tempo sends whole traces one request each; Jaeger found 16/17 with them and 17/17 with sampled baseline traces (bench/live_budget.py).")

    @field_validator("span_metrics", mode="before")
    @classmethod
    def _span_metrics_switch(cls, value: object) -> object:
        """true/false (the setting's earlier form) mean on/off."""
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return "on" if value.strip().lower() in ("true", "1") else "off"
        return value

    def reads_span_metrics(self, trace_backend: str) -> bool:
        """Whether span metrics give the baseline with this trace backend (``span_metrics``)."""
        return self.span_metrics == "on" or (self.span_metrics == "auto" and trace_backend == "tempo")

    timeout_s: float = Field(10.0, gt=0, description="Most seconds one Prometheus request may take, connect and whole body.")
    max_body_mb: float = Field(32.0, gt=0, description="Largest answer read from Prometheus (MiB, decoded); a larger one is refused.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed request.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry, at most 8 s, jittered down by up to half; a Retry-After is waited out (telemetry/transport.py).")


class LogsSettings(BaseModel):
    """Log evidence: Grafana Loki, or the Kubernetes API's pods/log, and how much of it is read."""

    enabled: bool = Field(True, description="Use log evidence when a source is configured (false: traces and metrics only).")
    loki_url: str = Field("", description="Grafana Loki base URL, e.g. http://loki-gateway.monitoring; empty = no Loki.")
    loki_tenant: str = Field("", description="X-Scope-OrgID sent to a multi-tenant Loki; empty = none.")
    pod_logs: bool = Field(False, description="Without Loki, read pods/log of the target namespace's pods through the Kubernetes API (needs RBAC get on pods/log: Helm logs.podLogs).")
    namespace_label: str = Field("namespace", description="Loki stream label holding the Kubernetes namespace.")
    pod_label: str = Field("pod", description="Loki stream label holding the pod name.")
    service_labels: list[str] = Field(default_factory=lambda: ["service_name", "app"], description="Loki stream labels tried in order for the service (JSON list); none present = the service derived from the pod name (a container label names the container, not the service, so it is not among the defaults).")
    history_minutes: float = Field(60.0, gt=0, description="Minutes of logs before the incident window used as each service's normal template mix.")
    lead_seconds: float = Field(30.0, ge=0, description="Seconds before the incident time counted in the log window (a service's errors often start before the alert fires).")
    guard_seconds: float = Field(30.0, ge=0, description="Seconds between the history and the log window left out of both.")
    max_lines: int = Field(50000, ge=100, description="Most log lines read per incident (history is sampled to fit).")
    max_requests: int = Field(40, ge=1, description="Most requests to the log backend per incident.")
    entry_limit: int = Field(5000, ge=1, description="Entries asked per Loki query (Loki's max_entries_limit_per_query, default 5000).")
    timeout_s: float = Field(10.0, gt=0, description="Most seconds one request to the log backend may take, connect and whole body.")
    max_body_mb: float = Field(32.0, gt=0, description="Largest answer read from Loki (MiB, decoded); a larger one is refused.")
    retries: int = Field(2, ge=0, le=10, description="Retries of a failed request (connection, timeout, 5xx, 429).")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry, at most 8 s, jittered down by up to half; a Retry-After is waited out (telemetry/transport.py).")


class TlsSettings(BaseModel):
    """Certificate checks of every backend reached over https:// (Jaeger, Tempo, Loki,
    Prometheus, the LLM)."""

    ca_bundle: str = Field("", description="PEM file of the CA certificates to trust for the backends (replaces the default store; Helm tls.caBundle mounts one); empty = the default store (requests honours REQUESTS_CA_BUNDLE).")
    insecure_skip_verify: bool = Field(False, description="Do not check backend certificates at all (a warning is logged once); only for a test cluster.")


class OperatorSettings(BaseModel):
    """The kopf operator: what it watches, how much it does at once, how it retries."""

    namespaces: list[str] = Field(default_factory=list, description="Namespaces watched (JSON list); empty = the whole cluster.")
    concurrency: int = Field(4, ge=1, le=64, description="Incidents diagnosed at the same time.")
    worker_processes: bool = Field(True, description="Diagnose in `concurrency` worker processes, so that the engine's CPU work never holds the GIL the operator's event loop (watch, status patches, liveness probe) needs; false = threads in the operator's process (less memory).")
    worker_nice: int = Field(10, ge=0, le=19, description="Niceness of the worker processes: when the CPUs are short, the kernel runs the operator's own process (kopf's event loop, the webhook, the liveness probe) first; 0 = the same priority.")
    retries: int = Field(5, ge=0, le=100, description="Retries of an incident whose backend or LLM is unreachable (retries + 1 tries) before it is marked Failed.")
    retry_delay_s: float = Field(30.0, ge=0, description="Delay before the first retry; doubles each time (capped at 10 min).")
    deadline_s: float = Field(300.0, gt=0, description="Wall-clock budget of one diagnosis.")
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the Alertmanager webhook (POST /alerts) and the operator's metrics (GET /metrics); 0 = not served.")
    health_port: int = Field(8081, ge=1, le=65535, description="Port of kopf's liveness endpoint (GET /healthz) under `thinkfl run`.")
    pod_nodes_from_api: bool = Field(False, description="Read each pod's node from the Kubernetes API (list pods in the incident's namespace) when Prometheus has no kube_pod_info; needs RBAC list on pods (Helm topology.readPods).")


class AlertSettings(BaseModel):
    """How Alertmanager alerts posted to /alerts become FailureIncidents."""

    service_labels: list[str] = Field(default_factory=lambda: ["service", "service_name", "app", "job"], description="Alert labels tried in order for the incident's service (JSON list).")
    namespace: str = Field("default", description="Namespace the incidents are created in.")
    engine: str = Field("", pattern="^(|auto|thinkfl|heuristic)$", description="Engine written to each incident; empty = the operator's default.")
    namespace_label: str = Field("namespace", description="Alert label naming the namespace of the application's pods (written to spec.targetNamespace); empty = none.")
    token: SecretStr = Field(SecretStr(""), description="Bearer token every POST /alerts must carry (Authorization: Bearer ...); empty = every alert is refused (401).")
    rate_per_minute: int = Field(600, ge=0, description="POSTs per minute accepted from one source address (429 beyond; 0 = no limit).")
    burst: int = Field(60, ge=1, description="POSTs one source address may send at once before the rate limit applies.")
    max_alerts: int = Field(1000, ge=1, description="Alerts read from one payload; the rest are skipped and counted.")
    concurrency: int = Field(8, ge=1, description="Incidents the webhook creates at the same time (across all requests).")
    tls_cert_file: str = Field("", description="Server certificate (PEM, with its chain) the webhook port serves HTTPS with; empty = plain HTTP. Read at start.")
    tls_key_file: str = Field("", description="Private key (PEM) of tls_cert_file.")
    tls_client_ca_file: str = Field("", description="CA bundle (PEM) client certificates must chain to; set = mutual TLS: POST /alerts needs a client certificate it verifies (GET /healthz and /metrics do not, for probes and scrapers). Needs tls_cert_file.")
    require_token: bool = Field(True, validate_default=True, description="POST /alerts needs the bearer token, with mutual TLS too; false (only with tls_client_ca_file) = the verified client certificate alone is enough.")

    @field_validator("require_token")
    @classmethod
    def _tls_complete(cls, value: bool, info: ValidationInfo) -> bool:
        cert, key, ca = (info.data.get(f"tls_{name}_file", "") for name in ("cert", "key", "client_ca"))
        if bool(cert) != bool(key):
            raise ValueError("alerts.tls_cert_file and alerts.tls_key_file go together")
        if ca and not cert:
            raise ValueError("alerts.tls_client_ca_file (mutual TLS) needs alerts.tls_cert_file and tls_key_file")
        if not value and not ca:
            raise ValueError("alerts.require_token=false needs alerts.tls_client_ca_file (else anyone could post)")
        return value


class Settings(BaseSettings):
    """Everything configurable, from the environment (prefix THINKFL_)."""

    model_config = SettingsConfigDict(
        env_prefix="THINKFL_",
        env_nested_delimiter="__",
        secrets_dir=str(SECRETS_DIR) if SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    engine: str = Field("heuristic", pattern="^(auto|thinkfl|heuristic)$", description="Default engine: heuristic (deterministic, no GPU), auto (ThinkFL, deterministic fallback), thinkfl (ThinkFL only).")
    log_level: str = Field("INFO", description="Level of the structured logs (stderr): DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: str = Field("console", pattern="^(console|json)$", description="Log renderer: console or json.")
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    heuristic: HeuristicSettings = Field(default_factory=HeuristicSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    traces: TracesSettings = Field(default_factory=TracesSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    operator: OperatorSettings = Field(default_factory=OperatorSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)


    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        level = "WARNING" if level == "WARN" else level
        if level not in LOG_LEVELS:
            raise ValueError(f"choose one of {', '.join(LOG_LEVELS)}")
        return level


#: Levels the structured logs accept.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def get_settings() -> Settings:
    """The settings in the environment now (``thinkfl`` and the operator read them once, at
    start; nothing caches them, so a test sets a variable and calls the command);
    ``UserInputError`` naming each bad variable and what is wrong with it."""
    try:
        return Settings()
    except ValidationError as exc:
        raise UserInputError(f"invalid settings: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """``THINKFL_OPERATOR__CONCURRENCY='abc': Input should be a valid integer; ...``."""
    parts = []
    for error in exc.errors():
        name = "THINKFL_" + "__".join(str(part).upper() for part in error["loc"])
        shown = f"={error['input']!r}" if isinstance(error.get("input"), str | int | float) else ""
        parts.append(f"{name}{shown}: {error['msg']}")
    return "; ".join(parts)
