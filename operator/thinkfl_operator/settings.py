"""The one settings object: environment variables prefixed ``THINKFL_``.

Nested values use ``__`` (``THINKFL_HEURISTIC__WINDOW_SECONDS=240``). Secrets may also come from
files in ``/etc/thinkfl/secrets`` (one file per variable name), as Kubernetes mounts them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Settings(BaseSettings):
    """Everything configurable, from the environment (prefix THINKFL_)."""

    model_config = SettingsConfigDict(
        env_prefix="THINKFL_",
        env_nested_delimiter="__",
        secrets_dir=str(SECRETS_DIR) if SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    engine: str = Field("heuristic", pattern="^(auto|thinkfl|heuristic)$", description="Default engine.")
    log_level: str = Field("INFO", description="Log level of the structured logs.")
    log_format: str = Field("console", pattern="^(console|json)$", description="Log renderer.")
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    heuristic: HeuristicSettings = Field(default_factory=HeuristicSettings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
