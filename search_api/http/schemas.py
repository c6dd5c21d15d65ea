"""Request and response models of the HTTP API (the OpenAPI docs are generated from these)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.store.names import PARTNER_RE, glob_problem
from search_api.retrieval.search import Mode

MAX_QUERY_CHARS = 2000
PARTNER_PATTERN = PARTNER_RE.pattern  # the manifest's partner ids
ON_BEHALF_OF = ("Answer for this partner too: only passages that both the key's partner and "
                "this partner may see. Needs a key with the scope act-as (else 403); an unknown "
                "partner sees nothing, so the answer is empty.")
MAX_WITHIN_GLOBS = 20
MAX_GLOB_CHARS = 300
# The validators' rules, also written into the OpenAPI schema so that clients (and the fuzz
# test) know them: some character other than white space; a glob relative to the corpus root.
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"
RELATIVE_GLOB = r"^(?!/)(?!(.*/)?\.\.(/|$))(?=.*[^\s\x1c-\x1f\x85])[^\x00-\x1f]*$"

SURROGATE = re.compile("[\ud800-\udfff]")


def require_text(value: str) -> str:
    """Refuse what is not Unicode text: JSON's \\uD800-\\uDFFF escapes, unpaired, decode to
    lone surrogates, which no encoding (UTF-8 for the tokenizer, SQLite, the audit) accepts."""
    found = SURROGATE.search(value)
    if found is not None:
        raise ValueError(
            f"character {found.start() + 1} is U+{ord(found.group()):04X}, half of a surrogate "
            "pair without its other half, which is not text; send Unicode text (UTF-8, or a "
            "\\u escape pair for characters beyond U+FFFF)")
    return value


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="What to look for, in natural language (1-2,000 characters).",
                       examples=["ionic conductivity of the sulfide electrolyte"],
                       json_schema_extra={"maxLength": MAX_QUERY_CHARS, "pattern": NOT_BLANK})
    top_k: int = Field(10, ge=1, le=100, description="How many passages to return (1-100).")
    mode: Mode = Field("hybrid", description="`hybrid` (default): meaning and exact words "
                       "fused; `dense`: meaning only (embeddings); `lexical`: words only (BM25).")
    on_behalf_of: str | None = Field(None, max_length=64, pattern=PARTNER_PATTERN,
                                     description=ON_BEHALF_OF)
    within: list[str] | None = Field(
        None, description="Only documents whose path (relative to the corpus root) matches one "
                          "of these globs, with access.yaml's glob rules (`*` within a folder, "
                          "`**` across folders). Narrows what the key may see; never widens it. "
                          f"At most {MAX_WITHIN_GLOBS} globs of {MAX_GLOB_CHARS} characters.",
        examples=[["shared/**", "acme/reports/*.pdf"]],
        json_schema_extra={"minItems": 1, "maxItems": MAX_WITHIN_GLOBS, "items": {
            "type": "string", "maxLength": MAX_GLOB_CHARS, "pattern": RELATIVE_GLOB}})

    @field_validator("query")
    @classmethod
    def _query_text(cls, value: str) -> str:
        require_text(value)
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > MAX_QUERY_CHARS:
            raise ValueError(f"is {len(value)} characters long; the limit is {MAX_QUERY_CHARS}")
        return value.strip()

    @field_validator("within")
    @classmethod
    def _globs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value or len(value) > MAX_WITHIN_GLOBS:
            raise ValueError(f"give 1 to {MAX_WITHIN_GLOBS} globs (got {len(value)}), "
                             "or leave 'within' out to search everything the key may see")
        return [_check_glob(i, g) for i, g in enumerate(value)]


def _check_glob(position: int, pattern: str) -> str:
    """A folder filter such as 'shared/**': relative, readable, and one wcmatch accepts."""
    try:
        require_text(pattern)
    except ValueError as exc:
        raise ValueError(f"glob {position + 1}: {exc}") from None
    where = f"glob {position + 1} ({pattern[:60]!r})"
    if len(pattern) > MAX_GLOB_CHARS:
        raise ValueError(f"{where} is {len(pattern)} characters long; the limit is "
                         f"{MAX_GLOB_CHARS}")
    if (problem := glob_problem(pattern)) is not None:
        raise ValueError(f"{where} {problem}")
    return pattern


class SearchResult(BaseModel):
    chunk_id: int = Field(description="Stable id of the passage (unchanged text keeps its id).")
    doc_id: str
    title: str
    path: str = Field(description="File path relative to the corpus root.")
    page: int | None = Field(description="1-based PDF page, slide or sheet number on which the "
                                         "passage's best match for the query lies (its sentence "
                                         "with the most query terms); null for formats without "
                                         "pages.")
    pages: list[int] | None = Field(
        None, exclude_if=lambda v: v is None, min_length=2, max_length=2,
        description="[first, last] page of a passage that spans a page break (absent "
                    "otherwise); `page` is one of them.")
    section: str | None = Field(None, description="Heading path, slide title or sheet name.")
    ocr: bool = Field(False, description="True when the text was recognised from a scanned "
                                         "image (OCR) and may contain recognition errors.")
    text: str
    score: float = Field(description="Relevance; higher is better. Its scale depends on the "
                         "mode: cosine similarity (dense), BM25 (lexical), fused (hybrid).")
    visible_to: list[str] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="Admin keys only (absent otherwise): the partners that may see this "
                    "document today.")


class SearchResponse(BaseModel):
    results: list[SearchResult]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="The question to ground an answer in (1-2,000 characters).",
                       examples=["What ionic conductivity did the electrolyte reach?"],
                       json_schema_extra={"maxLength": MAX_QUERY_CHARS, "pattern": NOT_BLANK})
    max_tokens: int = Field(1500, ge=50, le=8000,
                            description="Budget of the returned `context` (50-8,000), counted "
                                        "with the embedding model's tokenizer.")
    top_k: int = Field(20, ge=1, le=100,
                       description="How many best chunks to consider before merging and packing.")
    on_behalf_of: str | None = Field(None, max_length=64, pattern=PARTNER_PATTERN,
                                     description=ON_BEHALF_OF)

    @field_validator("query")
    @classmethod
    def _query_text(cls, value: str) -> str:
        return SearchRequest._query_text(value)  # the same rules as a search's query


class RetrievedPassage(BaseModel):
    number: int = Field(description="1-based; the [n] of the citation and of the context.")
    citation: str = Field(description="E.g. '[1] Pilot line report, p. 4'.")
    doc_id: str
    title: str
    path: str = Field(description="File path relative to the corpus root.")
    page: int | None = Field(description="Page, slide or sheet on which the passage's best "
                                         "match for the query lies (as `page` of /v1/search).")
    page_end: int | None = Field(description="Last page, slide or sheet (passages may span two).")
    pages: list[int] | None = Field(
        None, exclude_if=lambda v: v is None, min_length=2, max_length=2,
        description="[first, last] page of a passage that spans a page break (absent "
                    "otherwise).")
    section: str | None = Field(description="Heading path, slide title or sheet name.")
    ocr: bool = Field(description="True when some of the text was recognised by OCR.")
    chunk_ids: list[int] = Field(description="The neighbouring chunks merged into this passage.")
    score: float = Field(description="Best cosine similarity among its chunks.")
    tokens: int = Field(description="Tokens of `text`.")
    truncated: bool = Field(description="True when the text was cut to fit the budget.")
    text: str


class RetrieveResponse(BaseModel):
    passages: list[RetrievedPassage] = Field(description="Best first, numbered from 1.")
    context: str = Field(description="The numbered passages with their citations, ready to paste "
                                     "into a prompt; never over max_tokens.")
    tokens: int = Field(description="Tokens of `context`.")
    tokenizer: str = Field(description="The model whose tokenizer counted the tokens.")
