"""The natural units a chunk is made of: paragraphs, and a paragraph too long for one chunk cut at
its line breaks, then its sentences, then its words.

The cutting is langchain-text-splitters' recursive splitter with its separators, with one change:
the pieces are never packed together. Packing is what made every boundary depend on everything
above it; a unit's text depends only on the paragraph it comes from, so an edit elsewhere leaves
it, and its hash, as it was. `indexer.chunk.boundaries` then groups units into chunks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

# A line that titles what follows: a Markdown heading, a numbered heading ("3. Results after 300
# cycles", "2.1 Setup") or a short line in capitals, none of them ending like a sentence.
HEADING_LINE = re.compile(
    r"^(#{1,6}\s+\S.*"
    r"|(\d+(\.\d+)*\.?|[IVX]+\.|[A-Z]\.)\s+\S[^.!?;,]{0,100}[^.!?;,\s]"
    r"|[A-Z0-9][A-Z0-9 &/()'-]{2,60}:?)$")
ATX_LINE = re.compile(r"^ {0,3}#{1,6}\s+\S")
BLANK_LINE = re.compile(r"\n[ \t]*\n")
# The splitter's separators, coarse to fine; no "" (single characters): a word longer than a
# chunk stays one unit and is cut at the model's limit by the chunker.
SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " "]


@dataclass(frozen=True)
class Unit:
    start: int  # offsets into the text
    end: int
    tokens: int  # model word pieces
    key: int  # 64-bit hash of the unit's own text: what content-defined boundaries compare
    title: bool  # only heading lines: it must not end a chunk
    opens: bool  # begins with a heading that stands alone: a chunk must begin here
    paragraph_end: bool  # a blank line (or the end of the text) follows

    @property
    def rank(self) -> int:
        """What boundaries compare: a paragraph's end outranks a cut inside a paragraph; among
        equals, the hash decides."""
        return (int(self.paragraph_end) << 64) | self.key


class _UnpackedSplitter(RecursiveCharacterTextSplitter):
    """The recursive splitter, keeping its natural pieces apart instead of packing them."""

    def _merge_splits(self, splits: Iterable[str], separator: str) -> list[str]:
        return [s.strip() for s in splits if s.strip()]


class UnitSplitter:
    """Cuts a text into units of fewer than `max_tokens` word pieces (words excepted)."""

    def __init__(self, tokenizer: Any, max_tokens: int) -> None:
        self._tokenizer = tokenizer
        self._splitter = _UnpackedSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=max_tokens, chunk_overlap=0, separators=SEPARATORS,
            keep_separator="end", strip_whitespace=True)

    def split(self, text: str) -> list[Unit]:
        pieces = [p.strip() for p in self._splitter.split_text(text) if p.strip()]
        spans = []
        cursor = 0
        for piece in pieces:
            start = text.find(piece, cursor)
            if start < 0:  # the splitter only strips whitespace, so this is a safety net
                continue
            spans.append((start, start + len(piece)))
            cursor = start + len(piece)
        if not spans:
            return []
        counts = self._tokenizer([text[s:e] for s, e in spans], add_special_tokens=False,
                                 return_attention_mask=False)["input_ids"]
        units = []
        for i, (start, end) in enumerate(spans):
            piece = text[start:end]
            before = text[spans[i - 1][1]:start] if i else "\n\n"
            after = text[end:spans[i + 1][0]] if i + 1 < len(spans) else "\n\n"
            lines = [line.strip() for line in piece.splitlines() if line.strip()]
            title = all(HEADING_LINE.match(line) for line in lines)
            alone = len(lines) == 1 and _blank(before) and _blank(after)  # its own paragraph
            units.append(Unit(
                start=start, end=end, tokens=len(counts[i]), key=unit_key(piece), title=title,
                opens=bool(ATX_LINE.match(piece)) or (alone and title),
                paragraph_end=_blank(after)))
        return units


def unit_key(text: str) -> int:
    """The unit's hash, blind to how its whitespace was laid out."""
    digest = hashlib.blake2b(" ".join(text.split()).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _blank(gap: str) -> bool:
    """Whether the whitespace between two units holds an empty line (a paragraph break)."""
    return bool(BLANK_LINE.search(gap))
