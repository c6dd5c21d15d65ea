"""Text rebuilt from chunks: neighbouring chunks stitched by their offsets, page by page.

One implementation for every surface that shows more than one chunk as text: retrieve's merged
passages, MCP's fetch_document and the REST download of an export record, so two surfaces never
return different text for the same document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexer.store.records import ChunkSpan, Passage
from search_api.access.allowed import AllowedSet
from search_api.retrieval.live import LoadedIndex


@dataclass(frozen=True)
class Hit:
    passage: Passage
    span: ChunkSpan
    score: float


def stitch(pieces: Sequence[tuple[int, int, str]]) -> str:
    """Join (char_start, char_end, text) chunks of one page, in reading order, dropping the
    overlap between neighbours by their offsets. The gap between two chunks is whitespace the
    splitter stripped; it comes back as a space or a paragraph break. Offsets that go backwards
    (a new page text) or disagree with the texts only ever add a break, never garble."""
    text, last_start, end = "", -1, -1
    for start, stop, piece in pieces:
        if not text or start <= last_start:
            text += "\n\n" + piece if text else piece
        elif stop <= end:
            continue  # wholly inside what is already there
        elif start < end and text.endswith(piece[:end - start]):
            text += piece[end - start:]
        elif start <= end:
            text += ("\n" if start < end else "") + piece
        else:
            text += (" " if start == end + 1 else "\n\n") + piece
        last_start, end = start, stop
    return text


def _runs(hits: Sequence[Hit]) -> list[list[Hit]]:
    """Consecutive hits (in reading order) that share one page and section: one page text."""
    runs: list[list[Hit]] = []
    for hit in sorted(hits, key=lambda h: h.span.ordinal):
        if runs and (runs[-1][0].span.page, runs[-1][0].passage.section) == \
                (hit.span.page, hit.passage.section):
            runs[-1].append(hit)
        else:
            runs.append([hit])
    return runs


def group_text(hits: Sequence[Hit]) -> str:
    """The text of neighbouring chunks, stitched page by page."""
    return "\n\n".join(stitch([(h.span.char_start, h.span.char_end, h.passage.text)
                                for h in run]) for run in _runs(hits))


@dataclass(frozen=True)
class PageText:
    page: int | None
    section: str | None
    text: str


@dataclass(frozen=True)
class DocumentText:
    doc_id: str
    title: str
    path: str
    pages: list[PageText]

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages)


def document_text(index: LoadedIndex, doc_id: str, allowed: AllowedSet) -> DocumentText | None:
    """A document's text rebuilt from its chunks' offsets, page by page, if the caller may see
    it; None both when it does not exist and when the caller may not see it. MCP's
    fetch_document returns its pages; the REST download of an export record, its `text`.
    A hidden and a missing document take the same reads (documents.py)."""
    if not allowed.shows(index.access.first_chunk(allowed, doc_id)):
        return None
    ids = [c for c in index.generation.document_chunk_ids(doc_id) if c in allowed]
    hits: list[Hit] = []
    for first in range(0, len(ids), 500):  # bounded IN (...) lists
        batch = ids[first:first + 500]
        passages = index.generation.passages(batch)
        spans = index.generation.chunk_spans(batch)
        hits += [Hit(passages[c], spans[c], 0.0) for c in batch if c in passages and c in spans]
    if not hits:
        return None
    pages = [PageText(run[0].span.page, run[0].passage.section, group_text(run))
             for run in _runs(hits)]
    return DocumentText(doc_id, hits[0].passage.title, hits[0].passage.path, pages)
