"""Generations written straight through the store's writer, from hand-made rows and seeded
vectors: the format is tested without the pipeline or a model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from indexer.store.records import Chunk, FileRecord, Grant, StoredDocument, text_sha
from indexer.store.writer import GenerationWriter

DIM = 8
PARTNERS = ("acme", "globex")
# doc id -> (path, title, grant, chunk texts)
DOCS = {
    "shared/charter.md": ("shared/charter.md", "Programme charter",
                          Grant(1, frozenset(PARTNERS), None, "globex"),
                          ["The partners meet every quarter in Rotterdam.",
                           "Results are shared on the programme wiki after review."]),
    "acme/electrolyte.txt": ("acme/electrolyte.txt", "Electrolyte results",
                             Grant(2, frozenset({"acme"}), date(2030, 6, 30), "acme"),
                             ["KESTREL batch 7 reached 14.2 mS/cm after annealing."]),
    "gloss-soc": ("shared/glossary.jsonl", "State of charge",
                  Grant(1, frozenset(PARTNERS), None, "globex"),
                  ["State of charge is the remaining capacity of a battery."]),
    "internal/board.md": ("internal/board.md", "Board notes", Grant(None, frozenset(), None),
                          ["The board considers an acquisition, codename ALBATROSS."]),
}


def chunks_of(doc_id: str, texts: list[str], first_id: int) -> list[Chunk]:
    return [Chunk(first_id + n, doc_id, n, None, 0, len(t), t, "Intro" if n == 0 else None)
            for n, t in enumerate(texts)]


def vectors_for(texts: list[str]) -> np.ndarray:
    """A unit vector per text, the same for the same text (seeded by its hash)."""
    rows = [np.random.default_rng(int(text_sha(t)[:8], 16)).standard_normal(DIM) for t in texts]
    matrix = np.array(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def write_generation(root: Path, docs: dict[str, tuple] = DOCS, keep: int = 3,
                     report: dict[str, object] | None = None) -> str:
    """Write and publish one generation of `docs`; returns its name."""
    writer = GenerationWriter(root, DIM, {"model": "test-vectors", "dim": str(DIM)}, PARTNERS)
    next_id = 100
    by_path: dict[str, list[str]] = {}
    for doc_id, (path, title, grant, texts) in docs.items():
        writer.add_document(StoredDocument(doc_id, path, title, text_sha(" ".join(texts))), grant)
        chunks = chunks_of(doc_id, texts, next_id)
        next_id += 100
        writer.add_chunks(chunks, vectors_for(texts))
        by_path.setdefault(path, []).append(doc_id)
    writer.add_files(FileRecord(path, 10, 1, "0" * 64, tuple(ids)) for path, ids in
                     by_path.items())
    chunks = sum(len(texts) for *_, texts in docs.values())
    writer.publish(report or {"documents": len(docs), "chunks": chunks}, keep)
    return writer.name
