"""What the load stage produces: documents of pages, skips with a reason, and warnings.

Every format module (indexer/load/formats/) returns these values; they are plain frozen dataclasses
so that a file can be parsed in a worker process and its result pickled back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from indexer.store.records import StoredDocument


@dataclass(frozen=True)
class Page:
    """A unit of a document: a PDF page, a slide, a sheet, a section.

    `number` is what a citation calls a page (PDF page, slide number, sheet number); `section`
    is the heading path, slide title or sheet name; `ocr` marks text recognised from an image.
    No chunk straddles two pages, except where `continued` says that a page's text runs on from
    the previous page's (PDF pages: their breaks are layout, and move when text above changes);
    such a chunk keeps where each page begins in its text, so a result cites the page of its
    best match (search_api/retrieval/citing.py).
    """

    number: int | None  # 1-based PDF page / slide / sheet; None for formats without pages
    text: str
    section: str | None = None
    ocr: bool = False
    continued: bool = False


@dataclass(frozen=True)
class Document:
    doc_id: str
    path: str  # relative to the corpus root, '/'-separated: what access rules match
    title: str
    pages: tuple[Page, ...]
    content_sha: str  # of the extracted text: lets a re-index tell unchanged documents apart

    def row(self) -> StoredDocument:
        """What the index stores of it (its text is stored as chunks)."""
        return StoredDocument(self.doc_id, self.path, self.title, self.content_sha)


@dataclass(frozen=True)
class Skipped:
    path: str  # relative path, with ':LINE' for one record of a JSONL file
    reason: str


@dataclass(frozen=True)
class LoadWarning:
    path: str
    message: str


LoadResult = Document | Skipped | LoadWarning


@dataclass(frozen=True)
class LoadOptions:
    """What a loader needs besides the file; picklable, so a file can be parsed in a worker."""

    max_file_mb: float = 100.0
    password: str | None = None  # from the env variable access.yaml names for this file
    ocr: bool = True  # recognise the text of PDF pages that have no text layer
    ocr_max_pages: int = 50  # pages OCR'd per file at most; the rest are reported
    ocr_seconds: float = 60.0  # OCR time per file at most; the rest are reported
    ocr_dpi: int = 150  # rendering resolution for OCR (150 dpi: 1 % CER on linn.pdf)
    ocr_languages: str = "eng"  # tesseract language codes, e.g. "eng+deu"
    sheet_max_rows: int = 5000  # rows of one spreadsheet sheet kept as text; the rest reported
    max_unzipped_mb: float = 500.0  # an Office file expanding to more is refused (zip bomb)
    # Legacy text whose encoding detection cannot tell is read in this (the file's access.yaml
    # rule's, else the corpus's, else Windows-1252), and the report says what chose it.
    encoding: str = "cp1252"
    encoding_source: str = "the default for Western text"


def content_sha(pages: Iterable[Page]) -> str:
    """Hash of the extracted text (and where it sits), not of the file's bytes."""
    digest = hashlib.sha256()
    for page in pages:
        digest.update(f"{page.number}\x1f{page.section}\x1f{page.text}\x1e".encode())
    return digest.hexdigest()


