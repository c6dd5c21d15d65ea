"""One-paragraph edits of a long document, written as Markdown, text, Word or PDF, and the number
of chunks such an edit must change: the yardstick of content-defined chunking.

An edit inserts, deletes or edits (a sentence added in its middle) one paragraph at the top,
middle or end. The PDF is laid out like a real one: paragraphs wrapped at 90 characters, 55
lines a page, so an edit moves every later page break. "Changed" is measured on the extracted
text, not on the paragraphs: the chunks, after the edit, that hold text not in the document
before (the chunks that held the deleted text, for a deletion), at least one. Used by
benchmarks/reindex_speed.py and by tests/indexer/chunk/test_chunk_locality.py.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

from indexer.chunk.chunker import run_together
from indexer.load.loader import Document, LoadOptions, load_file
from indexer.store.records import Chunk
from tests.factory import pdf_bytes

FORMATS = ("md", "txt", "docx", "pdf")
OPS = tuple(f"{op}-{where}" for op in ("insert", "delete", "edit")
            for where in ("top", "middle", "end"))
INSERTED = ("Editorial note added on re-review: the findings below were re-checked against the "
            "original laboratory notebooks, and two figures were redrawn for clarity.")
ERRATUM = "Erratum: the sample size reported in this paragraph was corrected after review."
PDF_LINES_PER_PAGE = 55


def edited(paragraphs: Sequence[str], op: str) -> list[str]:
    """The paragraphs after one edit `op` ("insert-top", "delete-middle", "edit-end", ...)."""
    kind, where = op.split("-")
    out = list(paragraphs)
    at = {"top": 0, "middle": len(out) // 2, "end": len(out) - 1}[where]
    if kind == "insert":
        out.insert(at + (where == "end"), INSERTED)
    elif kind == "delete":
        del out[at]
    else:
        sentences = out[at].split(". ")
        half = max(1, len(sentences) // 2)
        out[at] = ". ".join([*sentences[:half], ERRATUM.rstrip("."), *sentences[half:]])
    return out


def write_document(path: Path, title: str, paragraphs: Sequence[str]) -> Path:
    """The document in the format its suffix names, its title first."""
    fmt = path.suffix.lstrip(".")
    if fmt == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    elif fmt == "txt":
        path.write_text(f"{title}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    elif fmt == "docx":
        import docx

        document = docx.Document()
        document.add_heading(title, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
        document.save(str(path))
    elif fmt == "pdf":
        # The test factory's PDF font is Latin-1: other characters become "?", in both versions.
        lines = [title] + [line.encode("latin-1", "replace").decode("latin-1")
                           for p in paragraphs for line in textwrap.wrap(p, 90)]
        pages = ["\n".join(lines[i:i + PDF_LINES_PER_PAGE])
                 for i in range(0, len(lines), PDF_LINES_PER_PAGE)]
        path.write_bytes(pdf_bytes(pages, title=title))
    else:
        raise ValueError(f"no writer for .{fmt}")
    return path


def load(path: Path) -> Document:
    """The document as the indexer reads it."""
    docs = [d for d in load_file(path, path.name, LoadOptions(ocr=False))
            if isinstance(d, Document)]
    if len(docs) != 1:
        raise ValueError(f"{path} did not load as one document")
    return docs[0]


def changed_chunks(before: Document, after: Document, chunks_before: Sequence[Chunk],
                   chunks_after: Sequence[Chunk]) -> int:
    """How many chunks the edit from `before` to `after` changes of necessity (at least one)."""
    text_before, text_after = _text(before), _text(after)
    prefix = 0
    while (prefix < min(len(text_before), len(text_after))
           and text_before[prefix] == text_after[prefix]):
        prefix += 1
    suffix = 0
    while (suffix < min(len(text_before), len(text_after)) - prefix
           and text_before[-1 - suffix] == text_after[-1 - suffix]):
        suffix += 1
    touched = max(_touching(after, chunks_after, prefix, len(text_after) - suffix),
                  _touching(before, chunks_before, prefix, len(text_before) - suffix))
    return max(touched, 1)


def embedded_after(chunks_before: Sequence[Chunk], chunks_after: Sequence[Chunk]) -> int:
    """Distinct chunk texts after the edit that were not there before: what a build embeds."""
    known = {c.text for c in chunks_before}
    return len({c.text for c in chunks_after if c.text not in known})


def _text(doc: Document) -> str:
    return run_together(doc.pages)[0]


def _starts(doc: Document) -> dict[tuple[int | None, str | None], int]:
    """Where each page's text begins in the document's text (pages keyed as chunks cite them)."""
    starts: dict[tuple[int | None, str | None], int] = {}
    for page, at in zip(doc.pages, run_together(doc.pages)[1], strict=True):
        starts.setdefault((page.number, page.section), at)
    return starts


def _touching(doc: Document, chunks: Sequence[Chunk], start: int, end: int) -> int:
    if end <= start:
        return 0
    starts = _starts(doc)
    return sum(1 for c in _offsets(chunks, starts) if c[0] < end and c[1] > start)


def _offsets(chunks: Sequence[Chunk], starts: dict[tuple[int | None, str | None], int]
             ) -> Iterator[tuple[int, int]]:
    for chunk in chunks:
        at = starts[(chunk.page, chunk.section)]
        yield at + chunk.char_start, at + chunk.char_end
