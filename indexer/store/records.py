"""The rows a generation stores, as the indexer writes them and the search API reads them.

Plain frozen values with no behaviour of the pipeline or the API: the pipeline produces them
(indexer/chunk/chunker.py makes Chunks, indexer/manifest.py Grants), the writer stores them and the
reader returns them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import numpy as np

# Where a page begins inside a chunk's text: (offset into the text, that page's number).
PageBreak = tuple[int, int]


@dataclass(frozen=True)
class Chunk:
    """One passage as stored: its id is the same in SQLite and in the vectors."""

    chunk_id: int
    doc_id: str
    ordinal: int  # position within the document
    page: int | None  # the page its text starts on
    char_start: int  # offsets into the page text; a chunk that runs on into the next page of
    char_end: int  # a PDF ends past its page's end (indexer.chunk.chunker.run_together)
    text: str
    section: str | None = None  # heading path, slide title or sheet name: for citations
    ocr: bool = False  # text recognised from a scanned image, not a text layer
    # A chunk that runs on across page breaks (PDF pages) keeps where each later page begins in
    # its text, so that a part of it can be cited by its own page (search_api/retrieval/
    # citing.py). Empty for a chunk on one page, and for generations written before it.
    breaks: tuple[PageBreak, ...] = ()

    @property
    def page_end(self) -> int | None:
        """The page its text ends on."""
        return self.breaks[-1][1] if self.breaks else self.page


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
    """A chunk as a result shows it. `page` is the page it cites: as stored, the page its text
    starts on; a search sets it to the page of the part that best matches the query
    (search_api/retrieval/citing.py). `pages` is (first, last) when its text spans a page
    break, and `breaks` says where each later page begins in `text`."""

    chunk_id: int
    doc_id: str
    title: str
    path: str
    page: int | None
    text: str
    section: str | None = None
    ocr: bool = False
    pages: tuple[int, int] | None = None
    breaks: tuple[PageBreak, ...] = ()


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


def encode_breaks(breaks: tuple[PageBreak, ...]) -> str | None:
    """A chunk's page breaks as stored: JSON [[offset, page], ...], NULL for none."""
    return json.dumps([list(b) for b in breaks], separators=(",", ":")) if breaks else None


def decode_breaks(stored: str | None) -> tuple[PageBreak, ...]:
    return tuple((int(at), int(page)) for at, page in json.loads(stored)) if stored else ()


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
