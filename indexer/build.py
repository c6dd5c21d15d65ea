"""One build, read top to bottom: discover -> read (carry over, or load in isolation) -> chunk
-> embed (or reuse by text) -> store -> publish.

Only this module wires the stages together; each stage takes and returns typed values. The
whole build holds the index's lock; the live generation is only ever replaced by `publish`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from indexer.chunk.chunker import Chunker, chunk_id_for
from indexer.discover import discover_files
from indexer.embed.embedder import Embedder, embedder_for
from indexer.incremental import Previous, pipeline_key
from indexer.intake import FileOptions, Intake, read_corpus
from indexer.load.loader import Document, LoadWarning, Skipped, load_options
from indexer.manifest import Manifest, load_manifest
from indexer.progress import Progress
from indexer.report import BuildReport
from indexer.settings import IndexerSettings
from indexer.store.generations import clean_debris
from indexer.store.layout import live_generation_dir
from indexer.store.lock import build_lock
from indexer.store.records import Chunk, FileRecord, Grant, StoredDocument
from indexer.store.runs import INTERRUPTED, clear_running, mark_running, settle_interrupted
from indexer.store.writer import GenerationWriter
from indexer.workers import BlockEmbedding, Workers, local_workers

__all__ = ["BuildError", "BuildReport", "ConfigError", "build"]
log = logging.getLogger(__name__)
EMBED_BLOCK = 1024  # chunks embedded and written per step: bounds memory, feeds the progress bar
Doc = Document | StoredDocument


class BuildError(Exception):
    """The build failed; nothing was published and the live index is unchanged."""


class ConfigError(Exception):
    """Bad arguments or settings (exit 2): nothing was changed."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _phase(name: str, detail: str = "") -> None:
    """One log line per phase: operators (and the crash tests) see where a build is."""
    log.info("phase %s%s", name, f": {detail}" if detail else "")


def build(corpus: Path, index: Path, settings: IndexerSettings, embedder: Embedder | None = None,
          environ: Mapping[str, str] | None = None) -> BuildReport:
    """Build a new generation of `index` from `corpus` and make it live.

    `environ` holds the password variables access.yaml names (default: this process's).
    """
    started = time.perf_counter()
    if not corpus.is_dir():
        raise ConfigError(f"corpus directory {corpus} does not exist")
    manifest = load_manifest(corpus)
    report = BuildReport(corpus=str(corpus), index=str(index), started_at=_now())
    with build_lock(index):
        if removed := clean_debris(index):
            log.info("removed what an interrupted build left: %s", ", ".join(removed))
        _settle_interrupted(index)
        mark_running(index, report.started_at)
        try:
            with workers_for(settings) as workers:
                report.stages = {"parse": workers.parse.as_dict(),
                                 "embed": workers.embed.as_dict()}
                report.cluster = workers.cluster
                report.shards = settings.shards
                _build(corpus, index, settings, manifest, workers, report, embedder, environ,
                       started)
        finally:
            clear_running(index)  # ended, however: the CLI records its outcome next
    log.info("published generation %s: %d documents, %d chunks (%d embedded, %d reused)",
             report.generation, report.documents, report.chunks, report.embedded, report.reused)
    return report


@contextmanager
def workers_for(settings: IndexerSettings) -> Iterator[Workers]:
    """The back-end is chosen here, where the build is assembled: this machine's workers, or
    the cluster's at `settings.ray_address` (connected before any model is loaded, so an
    unreachable cluster fails at once). Nothing else imports the cluster back-end."""
    if settings.ray_address is None:
        with local_workers(settings) as workers:
            yield workers
        return
    from indexer.cluster.connect import cluster_workers  # Ray is imported only here

    with cluster_workers(settings) as workers:
        yield workers


def _settle_interrupted(index: Path) -> None:
    """A run before this one that was killed left its marker: record it as interrupted, so the
    Builds page and /metrics show last night's kill, not the success before it."""
    live = live_generation_dir(index)
    run = settle_interrupted(index, live.name if live is not None else None)
    if run is not None:
        log.warning("the build started at %s %s", run.started_at, INTERRUPTED)


def _build(corpus: Path, index: Path, settings: IndexerSettings, manifest: Manifest,
           workers: Workers, report: BuildReport, embedder: Embedder | None,
           environ: Mapping[str, str] | None, started: float) -> None:
    """The build under the lock, its workers ready (this machine's, or a cluster's)."""
    _phase("model", settings.model if embedder is None else embedder.model)
    embedder = embedder or embedder_for(settings)
    embedding = workers.embedding(embedder)
    probe = embedding.fingerprint()
    report.stages["embed"]["backend"] = embedding.backend
    pipeline = pipeline_key(settings, manifest.encoding_key())
    previous = Previous.open(index, embedder.model, probe, pipeline)
    files, refused = discover_files(corpus, exclude=index)
    report.skipped += refused
    _phase("loading", f"{len(files)} files")
    stage_started = time.perf_counter()
    intake = _read(corpus, files, previous, manifest, settings, workers, environ)
    report.parse_seconds = round(time.perf_counter() - stage_started, 2)
    _phase("chunking")
    stage_started = time.perf_counter()
    chunker = Chunker(embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap,
                      embedder.max_tokens, settings.chunk_window_tokens)
    docs, records = _assemble(intake, chunker, report)
    report.chunk_seconds = round(time.perf_counter() - stage_started, 2)
    if not docs:
        raise BuildError(f"no document in {corpus} could be indexed "
                         f"({len(report.skipped)} skipped); the live index is unchanged")
    grants = {doc.path: manifest.grant_for(doc.path) for doc, _ in docs}  # once per file
    _warn_unused_rules(manifest, grants, report)
    _count_changes(previous, docs, report)
    writer = GenerationWriter(index, embedder.dim, {
        "model": embedder.model, "model_probe": probe, "dim": str(embedder.dim),
        "chunk_tokens": str(settings.chunk_tokens), "pipeline": pipeline,
        "chunk_overlap": str(settings.chunk_overlap), "corpus": str(corpus.resolve()),
    }, manifest.partners, ann_min_rows=settings.ann_min_chunks, shards=settings.shards)
    try:
        _phase("writing", f"{len(docs)} documents")
        for doc, _ in docs:
            writer.add_document(doc.row() if isinstance(doc, Document) else doc,
                                grants[doc.path])
        writer.add_files(records)
        _phase("embedding", f"{report.chunks} chunks")
        embed_started, busy = time.perf_counter(), embedding.busy_seconds
        bar = Progress(report.chunks, workers.embed.label("embedding"), "chunks",
                       settings.progress)
        _embed_and_store([c for _, cs in docs for c in cs], embedding, previous, writer,
                         embedder.dim, bar, report)
        report.embed_seconds = round(time.perf_counter() - embed_started, 2)
        report.stages["embed"]["busy_seconds"] = round(embedding.busy_seconds - busy, 2)
        for stage, done in workers.nodes.items():  # where a cluster's work ran
            report.stages[stage]["nodes"] = dict(sorted(done.items()))
        _phase("publishing", writer.name)
        report.generation = writer.name
        report.seconds = round(time.perf_counter() - started, 2)
        report.finished_at = _now()
        writer.publish(report.as_dict(), settings.keep_generations)
    except BaseException:
        writer.abort()  # also on Ctrl-C: a half-written generation never stays behind
        raise


def _read(corpus: Path, files: list[Path], previous: Previous, manifest: Manifest,
          settings: IndexerSettings, workers: Workers,
          environ: Mapping[str, str] | None) -> Intake:
    bar = Progress(len(files), workers.parse.label("loading"), "files", settings.progress)
    intake = read_corpus(corpus, files, previous, workers.parsing,
                         FileOptions(manifest, os.environ if environ is None else environ),
                         load_options(settings), bar.update)
    bar.close()
    for skip in intake.skipped:
        log.warning("skipped %s: %s", skip.path, skip.reason)
    for warning in intake.warnings:
        log.warning("%s: %s", warning.path, warning.message)
    return intake


def _assemble(intake: Intake, chunker: Chunker, report: BuildReport
              ) -> tuple[list[tuple[Doc, list[Chunk]]], list[FileRecord]]:
    """Chunk what was parsed, take what was carried; one owner per document id, unique ids."""
    report.skipped += intake.skipped
    report.kept_previous += intake.kept
    report.warnings += intake.warnings
    report.files_parsed, report.files_carried = intake.parsed, intake.carried
    out: list[tuple[Doc, list[Chunk]]] = []
    records: list[FileRecord] = []
    owners: dict[str, str] = {}
    seen: set[int] = set()
    for outcome in intake.outcomes:
        pairs: list[tuple[Doc, list[Chunk] | None]] = [(d, None) for d in outcome.parsed]
        pairs += [(d, cs) for d, cs in outcome.carried]
        kept_ids = []
        for doc, chunks in pairs:
            problem = None
            if doc.doc_id in owners:
                problem = f"document id '{doc.doc_id}' is already used by {owners[doc.doc_id]}"
            elif chunks is None and isinstance(doc, Document):
                chunks = chunker.chunk(doc)
                if not chunks:
                    problem = f"document '{doc.doc_id}' has no text left after chunking"
            if problem or not chunks:
                skip = Skipped(doc.path, problem or "no chunks")
                log.warning("skipped %s: %s", skip.path, skip.reason)
                report.skipped.append(skip)
                continue
            owners[doc.doc_id] = doc.path
            kept_ids.append(doc.doc_id)
            out.append((doc, [_unique(c, seen) for c in chunks]))
        if kept_ids:
            records.append(replace(outcome.record, doc_ids=tuple(kept_ids)))
    report.documents = len(out)
    report.chunks = sum(len(cs) for _, cs in out)
    return out, records


def _unique(chunk: Chunk, seen: set[int]) -> Chunk:
    """Move a chunk off a hash collision deterministically (salt 1, 2, ...)."""
    salt = 0
    while chunk.chunk_id in seen:
        salt += 1
        chunk = replace(chunk, chunk_id=chunk_id_for(chunk.doc_id, chunk.page, chunk.text,
                                                     salt=salt))
    seen.add(chunk.chunk_id)
    return chunk


def _count_changes(previous: Previous, docs: list[tuple[Doc, list[Chunk]]],
                   report: BuildReport) -> None:
    now = {doc.doc_id: doc.content_sha for doc, _ in docs}
    before = previous.doc_shas
    report.added = sum(1 for d in now if d not in before)
    report.deleted = sum(1 for d in before if d not in now)
    report.changed = sum(1 for d, sha in now.items() if d in before and before[d] != sha)
    report.unchanged = len(now) - report.added - report.changed


def _warn_unused_rules(manifest: Manifest, grants: dict[str, Grant],
                       report: BuildReport) -> None:
    used = {grant.rule for grant in grants.values()}
    for rule in manifest.rules:
        if rule.number not in used:
            report.warnings.append(LoadWarning(
                str(manifest.path), f"rule {rule.number} (line {rule.line}, "
                                    f"match '{rule.pattern}') matched no indexed document"))


def _embed_and_store(chunks: list[Chunk], embedding: BlockEmbedding, previous: Previous,
                     writer: GenerationWriter, dim: int, bar: Progress,
                     report: BuildReport) -> None:
    """Embed in blocks; a text the live generation already embedded reuses its vector.

    Every block's new texts are planned first, so a cluster receives them all as one
    dataset; the blocks are then written in order as their vectors arrive."""
    blocks = [chunks[first:first + EMBED_BLOCK] for first in range(0, len(chunks), EMBED_BLOCK)]
    known = [previous.embedded([c.text for c in block]) for block in blocks]
    # each distinct new text once per block, however often it occurs
    fresh = [sorted({c.text for i, c in enumerate(block) if i not in found})
             for block, found in zip(blocks, known, strict=True)]
    vectors = embedding.embed_blocks(fresh, bar.update)
    for block, found, texts in zip(blocks, known, fresh, strict=True):
        out = np.zeros((len(block), dim), dtype=np.float32)
        if found:
            out[list(found)] = previous.vectors(list(found.values()))
        by_text = dict(zip(texts, next(vectors), strict=True))
        for i, chunk in enumerate(block):
            if i not in found:
                out[i] = by_text[chunk.text]
        writer.add_chunks(block, out)
        report.embedded += len(texts)
        report.reused += len(found)
        bar.update(len(block) - len(texts))  # the reused and repeated ones: no work
    bar.close()
