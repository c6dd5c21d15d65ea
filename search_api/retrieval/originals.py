"""Original documents, with the same rights as search: visible iff one of its chunks is in the
caller's allowed set.

A document the caller may not see and one that does not exist raise the same error after the
same reads (one indexed probe of the document's first chunk, one membership test), so neither
the answers nor the work behind them tell the two apart
(tests/search_api/retrieval/test_documents.py counts the store's reads). A file is served only
while it is byte for byte the one that was indexed (its SHA-256 is kept in the generation) and
only from inside the corpus root; a JSONL record is served as the text that was indexed.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from search_api.access.allowed import AllowedSet
from search_api.errors import ApiError
from search_api.retrieval.live import LoadedIndex
from search_api.retrieval.stitching import document_text

OFFICE = "application/vnd.openxmlformats-officedocument"
MEDIA_TYPES = {  # explicit where the system's mime.types may lack them
    ".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain",
    ".csv": "text/csv", ".html": "text/html", ".htm": "text/html", ".pdf": "application/pdf",
    ".docx": f"{OFFICE}.wordprocessingml.document", ".xlsx": f"{OFFICE}.spreadsheetml.sheet",
    ".pptx": f"{OFFICE}.presentationml.presentation", ".eml": "message/rfc822",
    ".jsonl": "application/jsonl"}


class DocumentNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "not_found", "no document with this id is visible to this key")


class DocumentUnavailable(ApiError):
    """The caller may see the document, but its file is not the one indexed any more."""

    def __init__(self, message: str) -> None:
        super().__init__(410, "document_unavailable", message)


@dataclass(frozen=True)
class DocumentContent:
    body: bytes
    media_type: str
    filename: str


def fetch_document(index: LoadedIndex, allowed: AllowedSet, doc_id: str,
                   corpus: Path | None) -> DocumentContent:
    """The document's bytes as indexed, if `allowed` covers it."""
    if not allowed.shows(index.access.first_chunk(allowed, doc_id)):
        raise DocumentNotFound()
    row = index.generation.document(doc_id)
    if row is None:  # cannot happen within one generation; never a different answer
        raise DocumentNotFound()
    name = row.path.rsplit("/", 1)[-1]
    if row.doc_id != row.path:  # one record of an export (JSONL): its indexed text
        document = document_text(index, doc_id, allowed)
        text = document.text if document is not None else ""
        return DocumentContent(text.encode("utf-8"), "text/plain; charset=utf-8",
                               f"{_safe_name(doc_id)}.txt")
    body = _read_indexed_file(index, row.path, corpus)
    return DocumentContent(body, _media_type(name), name)


def _read_indexed_file(index: LoadedIndex, rel: str, corpus: Path | None) -> bytes:
    recorded = index.generation.info.get("corpus")
    if corpus is None and not recorded:
        raise DocumentUnavailable("this index does not record where its corpus is; set "
                                  "PKS_CORPUS to serve documents")
    root = (corpus or Path(str(recorded))).resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise DocumentUnavailable(f"'{rel}' now points outside the corpus; it is not served")
    expected = index.generation.file_digest(rel)
    if expected is None:
        raise DocumentUnavailable(f"'{rel}' cannot be checked against the indexed version "
                                  "(index built before files were fingerprinted); re-index it")
    try:
        body = target.read_bytes()
    except FileNotFoundError:
        raise DocumentUnavailable(f"'{rel}' was removed from the corpus after it was indexed"
                                  ) from None
    except OSError as exc:
        raise DocumentUnavailable(f"'{rel}' cannot be read ({exc.strerror})") from None
    if hashlib.sha256(body).hexdigest() != expected:
        raise DocumentUnavailable(f"'{rel}' changed after it was indexed; the next index build "
                                  "makes it available again")
    return body


def _media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    media = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{media}; charset=utf-8" if media.startswith("text/") else media


def _safe_name(doc_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)[:100] or "document"
