"""API settings: one pydantic-settings class, built once by the CLI (or a test) and passed in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from search_api.batching import Batching


class ApiSettings(BaseSettings):
    """Environment variables use the prefix ``PKS_`` (e.g. PKS_INDEX, PKS_PORT)."""

    model_config = SettingsConfigDict(env_prefix="PKS_", extra="ignore")

    index: Path = Field(Path("var/index"), description="index directory built by the indexer")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # One thread per query in FAISS and torch; requests run in parallel instead.
    faiss_threads: int = Field(1, ge=1)
    torch_threads: int = Field(1, ge=1)
    # Queries of concurrent requests are embedded together (search_api/batching.py).
    embed_workers: int = Field(2, ge=1, description="threads embedding query batches")
    query_batch: int = Field(32, ge=1, le=256, description="most queries in one batch")
    batch_window_ms: float = Field(
        2.0, ge=0, le=50, description="how long a worker waits for more queries, only while "
        "clients are concurrent (a query alone never waits)")
    reload_seconds: float = Field(
        5.0, ge=0, description="how often to look for a newly published generation (0: never)"
    )

    def batching(self) -> Batching:
        return Batching(self.embed_workers, self.query_batch, self.batch_window_ms)
