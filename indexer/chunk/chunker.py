"""Stage 3, chunk: split documents into passages measured in the embedding model's own tokens.

A page is cut into natural units (indexer.chunk.units: paragraphs, then lines, sentences, words)
and the units are grouped into chunks at content-defined boundaries (indexer.chunk.boundaries),
so an edit changes the chunks that contain it and at most a neighbour on each side, never every
chunk below it. Chunks are sized in word pieces (not characters) so the model never silently
truncates one, and each keeps its document, page and character offsets. Chunk ids are derived
from the content, so an unchanged passage keeps its id across rebuilds. See docs/CHUNKING.md.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from indexer.chunk.boundaries import group
from indexer.chunk.units import HEADING_LINE, Unit, UnitSplitter
from indexer.load.loader import Document, Page
from indexer.store.records import Chunk, PageBreak

__all__ = ["CHUNK_ID_BITS", "HEADING_LINE", "Chunk", "Chunker", "chunk_id_for", "run_together"]

# 53 bits: the ids stay exact as JSON numbers in a browser (Number.MAX_SAFE_INTEGER).
CHUNK_ID_BITS = 53
# Without a configured window, the boundary window is this share of the chunk size: chosen on
# SciFact's train split and on the re-index benchmark (docs/CHUNKING.md).
WINDOW_SHARE = 0.5


def chunk_id_for(doc_id: str, page: int | None, text: str, occurrence: int = 0,
                 salt: int = 0) -> int:
    """Stable id from what the chunk *is*, not where it sits: text inserted above a passage
    leaves its id unchanged. `occurrence` tells apart the same text repeated in one page of a
    document; `salt` only moves an id off a (rare) hash collision."""
    key = f"{doc_id}\x1f{page}\x1f{occurrence}\x1f{salt}\x1f{text}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return digest >> (64 - CHUNK_ID_BITS) or 1


class Chunker:
    """Content-defined grouping of natural units into chunks of at most `chunk_tokens`.

    `window_tokens` is the boundary window (and so the smallest chunk a boundary leaves,
    headings and ends of pages aside); `overlap` word pieces of a chunk's predecessor open it
    where the boundary falls inside a paragraph, never across a paragraph break or a heading.
    """

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap: int, max_tokens: int,
                 window_tokens: int | None = None) -> None:
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        self._size = min(chunk_tokens, max_tokens)
        self._window = max(1, min(window_tokens if window_tokens is not None
                                  else int(self._size * WINDOW_SHARE), self._size))
        self._overlap = min(overlap, self._size // 2)
        self._units = UnitSplitter(tokenizer, self._size)

    def chunk(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        seen: dict[tuple[int | None, str], int] = {}
        for flow in _flows(doc.pages):
            text, starts = run_together(flow)
            for start, piece in self._pieces(text):
                at = bisect_right(starts, start) - 1
                end_at = bisect_right(starts, start + len(piece) - 1) - 1
                page = flow[at]
                scope = flow[0].number  # a flow's first page: stable when its page breaks move
                occurrence = seen.get((scope, piece), 0)
                seen[(scope, piece)] = occurrence + 1
                chunks.append(Chunk(
                    chunk_id=chunk_id_for(doc.doc_id, scope, piece, occurrence),
                    doc_id=doc.doc_id,
                    ordinal=len(chunks),
                    page=page.number,
                    char_start=start - starts[at],
                    char_end=start - starts[at] + len(piece),
                    text=piece,
                    section=page.section,
                    ocr=any(p.ocr for p in flow[at:end_at + 1]),
                    breaks=_breaks(flow, starts, start, at, end_at),
                ))
        return chunks

    def _pieces(self, text: str) -> list[tuple[int, str]]:
        """(offset, text) of each chunk of one flow of text."""
        units = self._units.split(text)
        out: list[tuple[int, str]] = []
        previous = 0
        for first, last in group(units, self._window, self._size):
            lead = self._lead(units, previous, first, last)
            previous = first
            start, end = units[lead].start, units[last - 1].end
            if sum(u.tokens for u in units[lead:last]) <= self._max_tokens:
                out.append((start, text[start:end]))
            else:  # one word longer than the model's limit
                out += [(start + offset, part)
                        for offset, part in self._enforce_limit(text[start:end])]
        return out

    def _lead(self, units: Sequence[Unit], previous: int, first: int, last: int) -> int:
        """Where a chunk starts once its overlap is added: the last units of its predecessor
        (which starts at `previous`), up to `overlap` word pieces, if the boundary cuts a
        paragraph; never across a paragraph break, never before a heading that opens it."""
        if first == 0 or units[first].opens or units[first - 1].paragraph_end:
            return first
        room = min(self._overlap, self._size - sum(u.tokens for u in units[first:last]))
        lead = first
        while lead - 1 > previous and units[lead - 1].tokens <= room and (
                lead == first or not units[lead - 1].paragraph_end):
            room -= units[lead - 1].tokens
            lead -= 1
        return lead

    def _enforce_limit(self, piece: str) -> list[tuple[int, str]]:
        enc = self._tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        parts = []
        for first in range(0, len(offsets), self._size):
            window = offsets[first:first + self._size]
            part = piece[window[0][0]:window[-1][1]]
            stripped = part.strip()
            if stripped:
                parts.append((window[0][0] + part.find(stripped), stripped))
        return parts


def _breaks(flow: Sequence[Page], starts: Sequence[int], start: int, first: int,
            last: int) -> tuple[PageBreak, ...]:
    """Where each page after the chunk's first begins in its text (offset, page number): what
    lets a citation name the page a part of the chunk lies on. Not part of the chunk's id."""
    return tuple((starts[i] - start, number) for i in range(first + 1, last + 1)
                 if (number := flow[i].number) is not None)


def _flows(pages: Sequence[Page]) -> list[list[Page]]:
    """Runs of pages whose text runs on from one page to the next (PDF pages): chunked as one
    text, so that a page break moved by an edit above it moves no boundary."""
    flows: list[list[Page]] = []
    for page in pages:
        if flows and page.continued:
            flows[-1].append(page)
        else:
            flows.append([page])
    return flows


def run_together(pages: Sequence[Page]) -> tuple[str, list[int]]:
    """The pages' texts as one text, and where each page starts in it: one line break between
    two pages, none added where a page already ends with one (a blank line there would read as
    a paragraph break wherever the layout happened to break the page)."""
    parts: list[str] = []
    starts: list[int] = []
    at = 0
    for page in pages:
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
            at += 1
        starts.append(at)
        parts.append(page.text)
        at += len(page.text)
    return "".join(parts), starts
