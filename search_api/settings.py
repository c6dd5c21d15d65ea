"""API settings: one pydantic-settings class, built once by the CLI (or a test) and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Environment variables use the prefix ``PKS_`` (e.g. PKS_INDEX, PKS_PORT)."""

    model_config = SettingsConfigDict(env_prefix="PKS_", extra="ignore")

    index: Path = Field(Path("var/index"), description="index directory built by the indexer")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # One thread per query in FAISS and torch; requests run in parallel instead.
    faiss_threads: int = Field(1, ge=1)
    torch_threads: int = Field(1, ge=1)
    reload_seconds: float = Field(
        5.0, ge=0, description="how often to look for a newly published generation (0: never)"
    )
    # Operations (audit, metrics, limits): see the README's "Audit" and "Metrics and limits".
    audit_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="start a new audit segment past this size")
    audit_max_age_hours: float = Field(
        24.0, gt=0, description="start a new audit segment when the open one is this old")
    audit_fsync_seconds: float = Field(
        1.0, ge=0, description="fsync the audit at most this often (0: after every record)")
    metrics_require_admin: bool = Field(
        False, description="answer /metrics only to admin keys (default: open to a scraper)")
    rate_limit_per_minute: int = Field(
        600, ge=0, description="requests per minute per API key (0: no limit)")
    rate_limit_burst: int = Field(
        600, ge=1, description="requests a key may send at once before the per-minute rate applies")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="larger request bodies are refused with 413 unread")
