"""API settings: one pydantic-settings class, built once by the CLI (or a test) and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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
    api_key: SecretStr | None = Field(
        None, description="the key the stdio MCP server (`python -m search_api mcp`) acts with "
                          "(PKS_API_KEY); the HTTP server takes keys per request instead")
