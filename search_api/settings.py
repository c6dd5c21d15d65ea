"""API settings: one pydantic-settings class, built once by the CLI (or a test) and passed in."""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer.embed.embedder import Backend, Precision

HEADER_RE = re.compile(r"^[A-Za-z0-9-]+$")
# As the build's PKS_RAY_ADDRESS (indexer/settings.py): host:port, ray://host:port or local.
RAY_ADDRESS = r"^(local|([a-z]+://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5})$"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batching:
    """How queries are batched (ApiSettings.batching() builds it from the settings)."""

    workers: int = 1  # queries that arrive during a pass form the next batch
    max_batch: int = 32
    window_ms: float = 0.0
    backend: Backend = "auto"  # the forward pass (indexer/embed/embedder.py)
    precision: Precision = "auto"
    busy_threads: int | None = None  # threads of a pass while queries are concurrent


class ApiSettings(BaseSettings):
    """Environment variables use the prefix ``PKS_`` (e.g. PKS_INDEX, PKS_PORT)."""

    model_config = SettingsConfigDict(env_prefix="PKS_", extra="ignore")

    index: Path = Field(Path("var/index"), description="index directory built by the indexer")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # FAISS: one thread per query, requests run in parallel instead. The embedding worker's
    # forward pass: 2 threads (PKS_TORCH_THREADS, for OpenVINO as for torch). On 2 cores, one
    # worker of 2 threads answered 130 queries/s at 8 clients, two of 1 thread 105
    # (docs/PERFORMANCE.md).
    faiss_threads: int = Field(1, ge=1)
    torch_threads: int = Field(2, ge=1, description="threads of one query embedding pass")
    # While queries arrive concurrently every core is busy anyway: one thread per pass spent
    # 0.6-0.9 ms less CPU per query at 8 clients than two (docs/PERFORMANCE.md).
    busy_threads: int = Field(
        1, ge=1, description="threads of one query embedding pass while queries arrive "
        "concurrently (OpenVINO; at most PKS_TORCH_THREADS)")
    embed_backend: Literal["auto", "openvino", "torch"] = Field(
        "auto", description="query embedding on OpenVINO (auto falls back to torch) or torch")
    embed_precision: Literal["auto", "f32", "bf16"] = Field(
        "auto", description="auto: bf16 where the CPU computes it natively, else f32")
    # Queries of concurrent requests are embedded together (search_api/retrieval/batching.py).
    embed_workers: int = Field(1, ge=1, description="threads embedding query batches")
    query_batch: int = Field(32, ge=1, le=256, description="most queries in one batch")
    batch_window_ms: float = Field(
        0.0, ge=0, le=50, description="how long a worker waits for more queries, only while "
        "clients are concurrent (a query alone never waits)")
    reload_seconds: float = Field(
        5.0, ge=0, description="how often to look for a newly published generation (0: never)"
    )
    # Sharded serving on Ray (docs/SCALE.md, docs/CLUSTER.md): only with `serve --ray`.
    ray_address: str | None = Field(
        None, pattern=RAY_ADDRESS,
        description="serve each shard as a Ray Serve deployment on the cluster at this address "
                    "(host:port of its head, the build's PKS_RAY_ADDRESS too), or 'local' for "
                    "a private cluster of this machine, started and stopped with the server")
    ray: str | None = Field(None, description="PKS_RAY, the old name of PKS_RAY_ADDRESS "
                                              "(accepted with a warning)")
    ray_replicas: int = Field(1, ge=1, description="Ray Serve replicas per shard")
    ray_shard_cpus: float = Field(1.0, gt=0, description="CPUs Ray reserves per shard replica")
    ray_retry_seconds: float = Field(
        30.0, gt=0, description="how long a shard call is retried (a replica killed mid-query "
                                "is replaced by Ray Serve) before the request fails")
    ray_connect_timeout_seconds: float = Field(
        10.0, gt=0, description="joining the cluster: each step (TCP, Ray's handshake, "
                                "ray.init) fails after this long")
    ray_deploy_timeout_seconds: float = Field(
        300.0, gt=0, description="the shards' replicas must be placed and running (their "
                                 "indexes loaded) within this, or the server removes them and "
                                 "stops")
    ray_shutdown_timeout_seconds: float = Field(
        20.0, gt=0, description="how long stopping waits for this server's Serve applications "
                                "to be deleted; a SIGTERM during start-up exits within this "
                                "plus 5 s")
    ray_serve_host: str | None = Field(
        None, description="with --ray ADDRESS, the address each shard replica's Serve gRPC port "
                          "listens on: by default its node's Ray address (the node's "
                          "--node-ip-address); 127.0.0.1 keeps it to its own node (the server "
                          "calls replicas through Ray, not that port). --ray local: always "
                          "127.0.0.1")
    api_key: SecretStr | None = Field(
        None, description="the key the stdio MCP server (`python -m search_api mcp`) acts with "
                          "(PKS_API_KEY); the HTTP server takes keys per request instead")

    corpus: Path | None = Field(
        None, description="where the corpus is mounted for GET /v1/documents, if not at the path "
                          "recorded when the index was built")
    # Single sign-on behind a proxy: off unless enabled, and only from the listed proxies.
    trust_user_header: bool = Field(
        False, description="honour the user header (set by an SSO proxy) from trusted_proxies")
    user_header: str = Field("X-Forwarded-User", description="header naming the signed-in user")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="proxy addresses or networks, comma-separated, e.g. "
                                          "'10.0.0.5,10.1.0.0/24'")
    users_file: Path | None = Field(
        None, description="YAML table of users -> partner or admin (docs/OPERATIONS.md, Sign-in)")

    # Operations (audit, metrics, limits): docs/OPERATIONS.md, "Audit" and "Metrics and limits".
    audit_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="start a new audit segment past this size")
    audit_max_age_hours: float = Field(
        24.0, gt=0, description="start a new audit segment when the open one is this old")
    audit_fsync_seconds: float = Field(
        1.0, ge=0, description="fsync the audit at most this often (0: after every record)")
    audit_retention_days: int = Field(
        0, ge=0, description="keep this many UTC days of audit records, today included; older "
                             "ones are exported to PKS_AUDIT_EXPORT_DIR, then removed, with "
                             "their receipts (0: keep every record)")
    audit_export_dir: Path | None = Field(
        None, description="where pruned audit records are exported, gzipped JSON lines "
                          "(default: INDEX/audit-export)")
    metrics_token: SecretStr | None = Field(
        None, description="a bearer token that may read /metrics (a Prometheus scraper's "
                          "`authorization` credentials); admin keys may always read it")
    ready_check_seconds: float = Field(
        10.0, gt=0, description="/readyz runs its query through the index at most this often "
                                "and answers from the last outcome in between")
    rate_limit_per_minute: int = Field(
        600, ge=0, description="requests per minute per API key or signed-in user (0: no limit)")
    rate_limit_burst: int = Field(
        600, ge=1, description="requests a caller may send at once before the per-minute rate "
                               "applies")
    auth_failures_per_minute: int = Field(
        60, ge=0, description="refused sign-ins (401) per minute per client address, bursts "
                              "as large; beyond: 429 (0: no limit)")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="larger request bodies are refused with 413 unread")
    streams_per_key: int = Field(
        64, ge=1, description="open event streams (GET /mcp) one API key or user may hold; "
                              "the next is refused with 429")
    streams_per_server: int = Field(
        256, ge=1, description="open event streams one server process holds at most (lowered "
                               "to a quarter of its file descriptor limit)")
    stream_idle_seconds: float = Field(
        60.0, gt=0, description="an event stream that sent nothing but keep-alive pings for "
                                "this long is closed")

    # Shared state of several replicas (docs/REPLICAS.md): keys and audit in PostgreSQL.
    database_url: SecretStr | None = Field(
        None, description="postgresql://USER[:PASSWORD]@HOST[:PORT]/DB: keys and audit in "
                          "PostgreSQL, shared by every replica (default: INDEX/keys.sqlite "
                          "and INDEX/audit/)")
    database_pool_size: int = Field(
        8, ge=1, le=100, description="PostgreSQL connections one server process keeps at most")
    database_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="how long a server or CLI waits for PostgreSQL at start "
                                       "before it stops with a message")
    workers: int = Field(
        1, ge=1, le=64, description="server processes on this host, sharing the index's "
                                    "memory-mapped vectors (docs/REPLICAS.md)")
    pack_budget: float = Field(
        0.25, ge=0, le=1, description="share of the vector matrix that copies of broad "
        "scattered allowed sets may take on this host, divided among the workers (each "
        "process holds its own copies; the matrix itself is shared)")

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("PKS_DATABASE_URL must be a PostgreSQL URL such as "
                             "postgresql://pks@db.example:5432/pks (unset it to keep keys and "
                             "audit in files beside the index)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) \
            else value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"'{item}' is not an IP address or network ({exc})") from exc
        return value

    @field_validator("user_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not HEADER_RE.match(value):
            raise ValueError(f"'{value}' is not a valid HTTP header name")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("a scrape token needs at least 16 characters, e.g. the output of "
                             "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return value

    @field_validator("ray_serve_host")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)  # ValueError: "does not appear to be an IP address"
        return value

    @model_validator(mode="after")
    def _one_ray_address(self) -> ApiSettings:
        """PKS_RAY, the server's old name for the address, still works, with a warning."""
        if self.ray is not None:
            log.warning("PKS_RAY is deprecated: set PKS_RAY_ADDRESS (the build's name too)")
            if not re.match(RAY_ADDRESS, self.ray):
                raise ValueError(f"PKS_RAY {self.ray!r} is not host:port, ray://host:port or "
                                 "local")
            if self.ray_address is None:
                self.ray_address = self.ray
        return self

    @model_validator(mode="after")
    def _sso_complete(self) -> ApiSettings:
        if self.trust_user_header and (not self.trusted_proxies or self.users_file is None):
            raise ValueError("PKS_TRUST_USER_HEADER needs PKS_TRUSTED_PROXIES (the SSO proxy's "
                             "addresses) and PKS_USERS_FILE (users -> partners)")
        return self

    def audit_export(self) -> Path:
        return self.audit_export_dir or self.index / "audit-export"

    def batching(self) -> Batching:
        return Batching(self.embed_workers, self.query_batch, self.batch_window_ms,
                        self.embed_backend, self.embed_precision, self.busy_threads)
