"""The carry-over plan: what a build may take from the live generation instead of redoing it.

Two kinds of reuse, both checked against what produced the live generation:
- a file whose bytes are unchanged (same size and mtime, or same size and sha256) is not parsed
  again: its documents and chunks are carried over, if it was loaded and chunked the same way
  (same chunking settings and PIPELINE_VERSION);
- a chunk whose exact text is already embedded in the live generation by the same model weights
  reuses that vector, wherever the text now sits (moved, renamed, shifted by an insertion).
Grants are never carried: they are recomputed from today's access.yaml on every build.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from indexer.embed.embedder import model_reference
from indexer.load.loader import load_options
from indexer.settings import IndexerSettings
from indexer.store.layout import live_generation_dir
from indexer.store.reader import Generation
from indexer.store.records import Chunk, FileRecord, StoredDocument

log = logging.getLogger(__name__)
# Bump when a change to loading or chunking must re-parse files whose bytes did not change.
# 2: Office/HTML/e-mail formats, OCR, Markdown sections; 3: content-defined chunk boundaries,
# PDF text runs on across pages, legacy text encodings read; 4: chunks keep their page breaks,
# legacy text that detection cannot tell is read in the corpus's encoding
PIPELINE_VERSION = "4"


def pipeline_key(settings: IndexerSettings, encodings: str = "cp1252") -> str:
    """Everything besides a file's bytes that decides its documents and chunks: the settings,
    and the encodings access.yaml names for legacy text (Manifest.encoding_key)."""
    loading = load_options(settings)  # OCR, sheet and size limits change what a file yields
    return (f"v{PIPELINE_VERSION};encodings={encodings};chunk_tokens={settings.chunk_tokens};"
            f"chunk_overlap={settings.chunk_overlap};chunk_window={settings.chunk_window_tokens};"
            f"max_file_mb={settings.max_file_mb:g};"
            f"ocr={loading.ocr},{loading.ocr_max_pages},{loading.ocr_seconds:g},"
            f"{loading.ocr_dpi},{loading.ocr_languages};sheet_max_rows={loading.sheet_max_rows};"
            f"max_unzipped_mb={loading.max_unzipped_mb:g}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Previous:
    """The live generation seen as raw material for the next one (or nothing to reuse)."""

    def __init__(self, gen: Generation | None, same_model: bool, same_pipeline: bool) -> None:
        self.gen = gen
        self.same_model = gen is not None and same_model
        self.same_pipeline = self.same_model and same_pipeline
        self.files = gen.file_records() if gen is not None else {}
        self.doc_shas = gen.document_shas() if gen is not None else {}

    @classmethod
    def open(cls, index: Path, model: str, probe: str, pipeline: str) -> Previous:
        path = live_generation_dir(index)
        if path is None:
            return cls(None, False, False)
        try:
            gen = Generation(path)
        except Exception as exc:  # an unreadable old generation only costs re-embedding
            log.warning("cannot reuse anything from %s: %s", path, exc)
            return cls(None, False, False)
        recorded = model_reference(gen.info.get("model", ""))  # old generations: a path
        same_model = recorded == model and gen.info.get("model_probe") == probe
        return cls(gen, same_model, gen.info.get("pipeline") == pipeline)

    def unchanged(self, rel: str, path: Path, stat: os.stat_result) -> FileRecord | None:
        """The live record of this file if its bytes are the same (then it need not be read).

        A file kept from an earlier version is never "unchanged": it is tried again each night.
        """
        record = self.files.get(rel) if self.same_pipeline else None
        if record is None or record.status != "indexed" or record.size != stat.st_size:
            return None
        if record.mtime_ns == stat.st_mtime_ns:
            return record
        if file_sha256(path) == record.sha256:  # touched, or copied back: same bytes
            return replace(record, mtime_ns=stat.st_mtime_ns)
        return None

    def last_good(self, rel: str) -> FileRecord | None:
        """The version of this file the live generation serves, if any."""
        return self.files.get(rel) if self.gen is not None else None

    def carry(self, record: FileRecord) -> list[tuple[StoredDocument, list[Chunk]]]:
        """This file's documents and chunks as the live generation holds them."""
        if self.gen is None:
            return []
        docs = self.gen.stored_documents(record.doc_ids)
        chunks = self.gen.chunks_of([d for d in record.doc_ids if d in docs])
        return [(docs[d], chunks[d]) for d in record.doc_ids if d in docs and chunks[d]]

    def embedded(self, texts: list[str]) -> dict[int, int]:
        """Position in `texts` -> id of a live chunk with exactly that text and a vector by the
        same model weights (embeddings keyed by exact text), for the positions found."""
        if self.gen is None or not self.same_model or not texts:
            return {}
        ids = self.gen.chunk_ids_by_text(texts)
        return {i: ids[t] for i, t in enumerate(texts) if t in ids}

    def vectors(self, chunk_ids: list[int]) -> np.ndarray:
        """The live generation's vectors of these chunks (ids from `embedded`)."""
        if self.gen is None or not chunk_ids:
            return np.zeros((0, 0), dtype=np.float32)
        return self.gen.stored_vectors(np.array(chunk_ids, dtype=np.int64))
