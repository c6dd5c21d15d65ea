"""Stage 2, chunk: split documents into passages measured in the embedding model's own tokens.

Chunks are sized in word pieces (not characters) so the model never silently truncates one, and
each keeps its document, page and character offsets. Chunk ids are derived from the content, so
an unchanged passage keeps its id across rebuilds.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from indexer.load import Document
from indexer.store.records import Chunk

__all__ = ["CHUNK_ID_BITS", "Chunk", "Chunker", "chunk_id_for"]

# A line that titles what follows: a Markdown heading, a numbered heading ("3. Results after 300
# cycles", "2.1 Setup") or a short line in capitals, none of them ending like a sentence.
HEADING_LINE = re.compile(
    r"^(#{1,6}\s+\S.*"
    r"|(\d+(\.\d+)*\.?|[IVX]+\.|[A-Z]\.)\s+\S[^.!?;,]{0,100}[^.!?;,\s]"
    r"|[A-Z0-9][A-Z0-9 &/()'-]{2,60}:?)$")

# 53 bits: the ids stay exact as JSON numbers in a browser (Number.MAX_SAFE_INTEGER).
CHUNK_ID_BITS = 53


def chunk_id_for(doc_id: str, page: int | None, text: str, occurrence: int = 0,
                 salt: int = 0) -> int:
    """Stable id from what the chunk *is*, not where it sits: text inserted above a passage
    leaves its id unchanged. `occurrence` tells apart the same text repeated in one page of a
    document; `salt` only moves an id off a (rare) hash collision."""
    key = f"{doc_id}\x1f{page}\x1f{occurrence}\x1f{salt}\x1f{text}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return digest >> (64 - CHUNK_ID_BITS) or 1


class Chunker:
    """Recursive splitting on paragraphs, lines, sentences, words, counted in model tokens."""

    def __init__(self, tokenizer: Any, chunk_tokens: int, overlap: int, max_tokens: int) -> None:
        self._tokenizer = tokenizer
        self._max_tokens = max_tokens
        self._size = min(chunk_tokens, max_tokens)
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=self._size,
            chunk_overlap=min(overlap, self._size // 2),
            separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
            keep_separator="end",
            strip_whitespace=True,
        )

    def chunk(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        seen: dict[tuple[int | None, str], int] = {}
        for page in doc.pages:
            cursor = 0
            for piece in self._split(page.text):
                start = page.text.find(piece, cursor)
                if start < 0:  # the splitter only strips whitespace, so this is a safety net
                    start = max(page.text.find(piece), 0)
                cursor = start + 1
                occurrence = seen.get((page.number, piece), 0)
                seen[(page.number, piece)] = occurrence + 1
                chunks.append(Chunk(
                    chunk_id=chunk_id_for(doc.doc_id, page.number, piece, occurrence),
                    doc_id=doc.doc_id,
                    ordinal=len(chunks),
                    page=page.number,
                    char_start=start,
                    char_end=start + len(piece),
                    text=piece,
                    section=page.section,
                    ocr=page.ocr,
                ))
        return chunks

    def _split(self, text: str) -> list[str]:
        """Split, carry trailing headings over to the passage they title, then cut any piece
        the splitter's estimate let grow past the model's limit."""
        pieces = [p for p in self._splitter.split_text(text) if p.strip()]
        out: list[str] = []
        for start, end in _carry_headings(text, _spans(text, pieces)):
            piece = text[start:end].strip()
            if piece:
                out.extend(self._enforce_limit(piece))
        return out

    def _enforce_limit(self, piece: str) -> list[str]:
        enc = self._tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= self._max_tokens:
            return [piece]
        parts = []
        for first in range(0, len(offsets), self._size):
            window = offsets[first:first + self._size]
            parts.append(piece[window[0][0]:window[-1][1]].strip())
        return [p for p in parts if p]


def _spans(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Where each piece sits in the text (the splitter only strips whitespace)."""
    spans = []
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:
            start = max(text.find(piece), 0)
        spans.append((start, start + len(piece)))
        cursor = start + 1
    return spans


def _carry_headings(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A passage must not end with a heading whose content is in the next passage: the heading
    line moves to the start of the next one (which may already hold it, by overlap)."""
    spans = list(spans)
    for i in range(len(spans) - 1):
        start, end = spans[i]
        body = text[start:end].rstrip()
        lines = [line.strip() for line in body.splitlines() if line.strip()]
        if all(HEADING_LINE.match(line) for line in lines):  # only headings: join the next
            spans[i] = (start, start)
            spans[i + 1] = (min(start, spans[i + 1][0]), spans[i + 1][1])
            continue
        line_start = body.rfind("\n") + 1
        if not HEADING_LINE.match(body[line_start:].strip()):
            continue
        heading_at = start + line_start
        spans[i] = (start, heading_at)
        next_start, next_end = spans[i + 1]
        if next_start > heading_at:
            spans[i + 1] = (heading_at, next_end)
    return spans
