"""Request and response models of the HTTP API (the OpenAPI docs are generated from these)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from search_api.search import Mode

MAX_QUERY_CHARS = 2000


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="What to look for, in natural language (1-2,000 characters).",
                       examples=["ionic conductivity of the sulfide electrolyte"])
    top_k: int = Field(10, ge=1, le=100, description="How many passages to return (1-100).")
    mode: Mode = Field("hybrid", description="`hybrid` (default): meaning and exact words "
                       "fused; `dense`: meaning only (embeddings); `lexical`: words only (BM25).")

    @field_validator("query")
    @classmethod
    def _query_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > MAX_QUERY_CHARS:
            raise ValueError(f"is {len(value)} characters long; the limit is {MAX_QUERY_CHARS}")
        return value.strip()


class SearchResult(BaseModel):
    chunk_id: int = Field(description="Stable id of the passage (unchanged text keeps its id).")
    doc_id: str
    title: str
    path: str = Field(description="File path relative to the corpus root.")
    page: int | None = Field(description="1-based PDF page, slide or sheet number; null for "
                                         "formats without pages.")
    section: str | None = Field(None, description="Heading path, slide title or sheet name.")
    ocr: bool = Field(False, description="True when the text was recognised from a scanned "
                                         "image (OCR) and may contain recognition errors.")
    text: str
    score: float = Field(description="Relevance; higher is better. Its scale depends on the "
                         "mode: cosine similarity (dense), BM25 (lexical), fused (hybrid).")


class SearchResponse(BaseModel):
    results: list[SearchResult]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
