"""One build, read top to bottom: load -> chunk -> embed -> store -> publish.

Only this module wires the stages together; each stage takes and returns typed values.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from indexer.chunk import Chunk, Chunker, chunk_id_for
from indexer.discover import discover
from indexer.embed import Embedder
from indexer.load import Document, LoadOptions, LoadWarning, Skipped, load_corpus
from indexer.manifest import Grant, Manifest, load_manifest
from indexer.settings import IndexerSettings
from indexer.store import Generation, GenerationWriter, build_lock, live_generation_dir

log = logging.getLogger(__name__)
EMBED_BLOCK = 1024  # chunks embedded and written per step: bounds memory, feeds the progress bar
PROBE_TEXT = "partner knowledge search: embedding model fingerprint"


class BuildError(Exception):
    """The build failed; nothing was published and the live index is unchanged."""


class ConfigError(Exception):
    """Bad arguments or settings (exit 2): nothing was changed."""


@dataclass
class BuildReport:
    corpus: str
    index: str
    generation: str = ""
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "chunks_per_second": round(self.chunks_per_second, 2)}


def build(corpus: Path, index: Path, settings: IndexerSettings,
          embedder: Embedder | None = None) -> BuildReport:
    """Build a new generation of `index` from `corpus` and make it live."""
    started = time.perf_counter()
    if not corpus.is_dir():
        raise ConfigError(f"corpus directory {corpus} does not exist")
    manifest = load_manifest(corpus)
    embedder = embedder or Embedder(settings.model, settings.batch_size, settings.torch_threads)
    report = BuildReport(corpus=str(corpus), index=str(index))

    with build_lock(index):
        files = discover(corpus, exclude=index)
        docs = _load(corpus, files, settings, report)
        chunker = Chunker(embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap,
                          embedder.max_tokens)
        chunked = _chunk(docs, chunker, report)
        if not chunked:
            raise BuildError(f"no document in {corpus} could be indexed "
                             f"({len(report.skipped)} skipped); the live index is unchanged")
        grants = {doc.path: manifest.grant_for(doc.path) for doc, _ in chunked}  # once per file
        _warn_unused_rules(manifest, grants, report)
        probe = _fingerprint(embedder)
        previous = _reusable_generation(index, embedder.model, probe)
        writer = GenerationWriter(index, embedder.dim, {
            "model": embedder.model, "model_probe": probe, "dim": str(embedder.dim),
            "chunk_tokens": str(settings.chunk_tokens),
            "chunk_overlap": str(settings.chunk_overlap), "corpus": str(corpus.resolve()),
        }, manifest.partners)
        try:
            for doc, _ in chunked:
                writer.add_document(doc, grants[doc.path])
            for rel in sorted({doc.path for doc, _ in chunked}):
                digest = _file_sha256(corpus / rel)
                if digest is not None:  # gone since it was read: the API will not serve it
                    writer.add_file_digest(rel, digest)
            embed_started = time.perf_counter()
            _embed_and_store([c for _, cs in chunked for c in cs], embedder, previous, writer,
                             settings.progress, report)
            report.embed_seconds = round(time.perf_counter() - embed_started, 2)
            report.generation = writer.name
            report.seconds = round(time.perf_counter() - started, 2)
            writer.publish(report.as_dict(), settings.keep_generations)
        except BaseException:
            writer.abort()  # also on Ctrl-C: a half-written generation never stays behind
            raise
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _load(corpus: Path, files: list[Path], settings: IndexerSettings,
          report: BuildReport) -> list[Document]:
    docs: list[Document] = []
    owners: dict[str, str] = {}
    for item in tqdm(load_corpus(corpus, files, LoadOptions(settings.max_file_mb)), desc="load",
                     unit="doc", disable=not settings.progress, leave=False):
        if isinstance(item, Skipped):
            log.warning("skipped %s: %s", item.path, item.reason)
            report.skipped.append(item)
        elif isinstance(item, LoadWarning):
            log.warning("%s: %s", item.path, item.message)
            report.warnings.append(item)
        elif item.doc_id in owners:
            skip = Skipped(item.path, f"document id '{item.doc_id}' is already used by "
                                      f"{owners[item.doc_id]}")
            log.warning("skipped %s: %s", skip.path, skip.reason)
            report.skipped.append(skip)
        else:
            owners[item.doc_id] = item.path
            docs.append(item)
    return docs


def _chunk(docs: list[Document], chunker: Chunker,
           report: BuildReport) -> list[tuple[Document, list[Chunk]]]:
    out: list[tuple[Document, list[Chunk]]] = []
    seen: set[int] = set()
    for doc in docs:
        chunks = [_unique(c, seen) for c in chunker.chunk(doc)]
        if not chunks:
            skip = Skipped(doc.path, f"document '{doc.doc_id}' has no text left after chunking")
            log.warning("skipped %s: %s", skip.path, skip.reason)
            report.skipped.append(skip)
            continue
        out.append((doc, chunks))
    report.documents = len(out)
    report.chunks = sum(len(cs) for _, cs in out)
    return out


def _unique(chunk: Chunk, seen: set[int]) -> Chunk:
    """Move a chunk off a hash collision deterministically (salt 1, 2, ...)."""
    salt = 0
    while chunk.chunk_id in seen:
        salt += 1
        chunk = replace(chunk, chunk_id=chunk_id_for(chunk.doc_id, chunk.page, chunk.text,
                                                     salt=salt))
    seen.add(chunk.chunk_id)
    return chunk


def _file_sha256(path: Path) -> str | None:
    """Digest of a source file's bytes: the API serves a file only while it still matches."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _warn_unused_rules(manifest: Manifest, grants: dict[str, Grant],
                       report: BuildReport) -> None:
    used = {grant.rule for grant in grants.values()}
    for rule in manifest.rules:
        if rule.number not in used:
            report.warnings.append(LoadWarning(
                str(manifest.path), f"rule {rule.number} (line {rule.line}, "
                                    f"match '{rule.pattern}') matched no indexed document"))


def _fingerprint(embedder: Embedder) -> str:
    """Tells whether stored vectors came from the same model weights, not just the same name."""
    vec = embedder.embed([PROBE_TEXT])[0]
    return ",".join(f"{x:.4f}" for x in vec[:8])


def _reusable_generation(index: Path, model: str, probe: str) -> Generation | None:
    """The live generation, if its vectors came from this very model and can be reused."""
    path = live_generation_dir(index)
    if path is None:
        return None
    try:
        gen = Generation(path)
    except Exception as exc:  # an unreadable old generation only costs re-embedding
        log.warning("cannot reuse vectors of %s: %s", path, exc)
        return None
    if gen.info.get("model") != model or gen.info.get("model_probe") != probe:
        return None
    return gen


def _embed_and_store(chunks: list[Chunk], embedder: Embedder, previous: Generation | None,
                     writer: GenerationWriter, progress: bool, report: BuildReport) -> None:
    """Embed in blocks; a chunk id already in the live generation reuses its stored vector."""
    known = set(previous.all_chunk_ids().tolist()) if previous else set()
    bar = tqdm(total=len(chunks), desc="embed", unit="chunk", disable=not progress)
    for first in range(0, len(chunks), EMBED_BLOCK):
        block = chunks[first:first + EMBED_BLOCK]
        vectors = np.zeros((len(block), embedder.dim), dtype=np.float32)
        fresh = [i for i, c in enumerate(block) if c.chunk_id not in known]
        old = [i for i, c in enumerate(block) if c.chunk_id in known]
        if fresh:
            vectors[fresh] = embedder.embed([block[i].text for i in fresh])
        if old and previous is not None:
            vectors[old] = previous.vectors.vectors(np.array([block[i].chunk_id for i in old]))
        writer.add_chunks(block, vectors)
        report.embedded += len(fresh)
        report.reused += len(old)
        bar.update(len(block))
    bar.close()
