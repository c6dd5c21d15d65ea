"""The rows a generation stores, as the indexer writes them and the search API reads them.

Plain frozen values with no behaviour of the pipeline or the API: the pipeline produces them
(indexer/chunk/chunker.py makes Chunks, indexer/manifest.py Grants), the writer stores them and the
reader returns them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """One passage as stored: its id is the same in SQLite and in the vectors."""

    chunk_id: int
    doc_id: str
    ordinal: int  # position within the document
    page: int | None
    char_start: int  # offsets into the page text; a chunk that runs on into the next page of
    char_end: int  # a PDF ends past its page's end (indexer.chunk.chunker.run_together)
    text: str
    section: str | None = None  # heading path, slide title or sheet name: for citations
    ocr: bool = False  # text recognised from a scanned image, not a text layer


@dataclass(frozen=True)
class Grant:
    """What one document receives: the partners of the first matching access rule (`rule` is
    its 1-based number), or nobody (rule None: admins only)."""

    rule: int | None
    partners: frozenset[str]
    until: date | None
    owner: str | None = None  # the partner whose IP the document is: may read who saw it


NO_GRANT = Grant(rule=None, partners=frozenset(), until=None)


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    doc_id: str
    title: str
    path: str
    page: int | None
    text: str
    section: str | None = None
    ocr: bool = False


@dataclass(frozen=True)
class ChunkSpan:
    """Where a chunk sits in its document: to merge neighbours and rebuild a page's text."""

    chunk_id: int
    doc_id: str
    ordinal: int  # position within the document
    page: int | None
    char_start: int  # offsets into the page text
    char_end: int


@dataclass(frozen=True)
class FileRecord:
    """One corpus file as a generation saw it: lets the next build skip it when unchanged.

    status is "indexed" (parsed this build or carried over unchanged) or "kept" (it failed this
    build, so its previous documents were carried over; size/mtime/sha are the good version's).
    """

    path: str
    size: int
    mtime_ns: int
    sha256: str
    doc_ids: tuple[str, ...]
    status: str = "indexed"
    reason: str | None = None


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    path: str
    title: str
    content_sha: str


def text_sha(text: str) -> str:
    """SHA-256 of a text: the key of an embedding (the exact text embedded; the model is checked
    per generation), and the content hash of a text document."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GrantRows:
    """All chunk ids one grant (partner, until) covers, in one access group (`rule`) when read
    by group: the raw material of allowed sets."""

    partner: str
    until: date | None
    chunk_ids: np.ndarray
    rule: int | None = None


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    path: str
    title: str
    chunk_ids: np.ndarray
