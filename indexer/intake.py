"""Stage 2 as a nightly build runs it: every discovered file is carried over unchanged, parsed
(in an isolated worker, with a time limit), or, when it fails tonight but was indexed before,
kept in its last good version. Only a file that is really gone leaves the index.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from indexer.incremental import Previous, file_sha256
from indexer.load.isolate import IsolatedParser
from indexer.load.loader import Document, LoadOptions, LoadResult, LoadWarning, Skipped, refusal
from indexer.manifest import Manifest
from indexer.store.records import Chunk, FileRecord, StoredDocument

log = logging.getLogger(__name__)
READ_ATTEMPTS = 3  # a file still changing after this many reads is tried again next night


@dataclass
class FileOutcome:
    """One corpus file tonight: its record and either parsed or carried-over documents."""

    record: FileRecord
    parsed: list[Document] = field(default_factory=list)
    carried: list[tuple[StoredDocument, list[Chunk]]] = field(default_factory=list)


@dataclass
class Intake:
    outcomes: list[FileOutcome] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    kept: list[Skipped] = field(default_factory=list)
    warnings: list[LoadWarning] = field(default_factory=list)
    parsed: int = 0
    carried: int = 0


class FileOptions:
    """What access.yaml says of one file besides its rights: its password, read here at build
    time from the environment variable the manifest names (never from the manifest itself),
    and the encoding of legacy text that detection cannot tell."""

    def __init__(self, manifest: Manifest, environ: Mapping[str, str]) -> None:
        self._manifest = manifest
        self._environ = environ

    def options(self, rel: str, base: LoadOptions) -> tuple[LoadOptions, str | None]:
        """(options for this file, the name of a variable named for it but not set)."""
        env = self._manifest.password_env_for(rel)
        password = self._environ.get(env) if env else None
        missing = env if env and password is None else None
        encoding, source = self._manifest.encoding_for(rel)
        return replace(base, password=password, encoding=encoding,
                       encoding_source=source), missing


@dataclass(frozen=True)
class ParseJob:
    """A file to parse tonight: where it lies, its corpus path, its loader options."""

    path: Path
    rel: str
    options: LoadOptions


# What parsing one file gave: None (the file is gone), (None, results) (it kept changing while
# being read), or (its record, results), the record naming the very bytes that were parsed.
Parsed = tuple[FileRecord | None, list[LoadResult]] | None


class FileParsing(Protocol):
    """Parses files (this machine's isolated worker, or a cluster's workers) and answers in the
    order of the jobs; `done` is called as each file finishes, for the progress bar."""

    def parse_files(self, jobs: Sequence[ParseJob],
                    done: Callable[[], None]) -> Iterator[Parsed]: ...


class LocalParsing:
    """One isolated worker process on this machine (isolate.py), one file after another."""

    def __init__(self, parser: IsolatedParser) -> None:
        self._parser = parser

    def parse_files(self, jobs: Sequence[ParseJob],
                    done: Callable[[], None]) -> Iterator[Parsed]:
        for job in jobs:
            got = _parse_stable(job.path, job.rel, job.options, self._parser)
            done()
            yield got


@dataclass
class _Plan:
    """One file before parsing: carried over, refused, or a job (and a password it lacks)."""

    rel: str
    carried: FileRecord | None = None
    job: ParseJob | None = None
    missing_env: str | None = None
    skipped: Skipped | None = None
    failure: str = ""


def read_corpus(corpus: Path, files: list[Path], previous: Previous, parsing: FileParsing,
                per_file: FileOptions, options: LoadOptions,
                tick: Callable[[], None] = lambda: None) -> Intake:
    """Every file's outcome, in the order of `files`, whoever parses them."""
    intake = Intake()
    plans = [_plan(path, path.relative_to(corpus).as_posix(), previous, per_file, options)
             for path in files]
    parsed = parsing.parse_files([p.job for p in plans if p.job is not None], tick)
    for plan in plans:
        if plan.job is not None:
            intake.parsed += 1
            _take(plan.rel, next(parsed), plan.missing_env, previous, intake)
            continue
        if plan.carried is not None:
            intake.carried += 1
            intake.outcomes.append(FileOutcome(plan.carried, carried=previous.carry(plan.carried)))
        elif plan.skipped is not None:
            intake.skipped.append(plan.skipped)
        else:
            _keep_or_skip(plan.rel, plan.failure, previous, intake)
        tick()
    return intake


def _plan(path: Path, rel: str, previous: Previous, per_file: FileOptions,
          base: LoadOptions) -> _Plan:
    try:
        info = os.stat(path)
        same = previous.unchanged(rel, path, info) if stat.S_ISREG(info.st_mode) else None
    except FileNotFoundError:
        return _Plan(rel, skipped=Skipped(rel, "disappeared during the build"))
    except OSError as exc:
        return _Plan(rel, failure=f"could not be read: {exc.strerror or exc}")
    if same is not None:
        return _Plan(rel, carried=same)
    options, missing_env = per_file.options(rel, base)
    return _Plan(rel, job=ParseJob(path, rel, options), missing_env=missing_env)


def _take(rel: str, got: Parsed, missing_env: str | None, previous: Previous,
          intake: Intake) -> None:
    """A parsed file's documents, or its failure: then its last good version, or a skip."""
    if got is None:
        intake.skipped.append(Skipped(rel, "disappeared while being read"))
        return
    record, results = got
    docs = [r for r in results if isinstance(r, Document)]
    intake.warnings += [r for r in results if isinstance(r, LoadWarning)]
    skips = [_explain(r, missing_env) for r in results if isinstance(r, Skipped)]
    if docs and record is not None:
        intake.skipped += skips
        intake.outcomes.append(FileOutcome(record, parsed=docs))
        return
    failure = "; ".join(s.reason for s in skips if s.path == rel) or \
        "; ".join(f"{s.path}: {s.reason}" for s in skips) or "no document in this file"
    if record is None:
        failure = "kept changing while being read (it is read again at the next build)"
    intake.skipped += [s for s in skips if s.path != rel] if _kept(rel, previous) else skips
    _keep_or_skip(rel, failure, previous, intake)


def _kept(rel: str, previous: Previous) -> bool:
    good = previous.last_good(rel)
    return good is not None and good.status in {"indexed", "kept"}


def _keep_or_skip(rel: str, reason: str, previous: Previous, intake: Intake) -> None:
    """Tonight's copy failed: serve the last good version if there is one, else skip it."""
    good = previous.last_good(rel)
    carried = previous.carry(good) if good is not None and _kept(rel, previous) else []
    if good is None or not carried:
        if not any(s.path == rel for s in intake.skipped):
            intake.skipped.append(Skipped(rel, reason))
        return
    log.warning("%s: kept previous version: %s", rel, reason)
    intake.kept.append(Skipped(rel, reason))
    record = FileRecord(good.path, good.size, good.mtime_ns, good.sha256, good.doc_ids,
                        "kept", reason)
    intake.outcomes.append(FileOutcome(record, carried=carried))


def _explain(skip: Skipped, missing_env: str | None) -> Skipped:
    """An encrypted file whose password variable is not set says so, not just 'encrypted'."""
    if missing_env and skip.reason.startswith("encrypted"):
        return Skipped(skip.path, f"encrypted: environment variable {missing_env} named in "
                                  "access.yaml is not set")
    return skip


def _parse_stable(path: Path, rel: str, options: LoadOptions,
                  parser: IsolatedParser) -> tuple[FileRecord | None, list[LoadResult]] | None:
    """Parse, and re-read when the file changed meanwhile. None: the file is gone;
    (None, results): it kept changing. The sha is of the bytes the parser saw (same stat)."""
    results: list[LoadResult] = []
    for _ in range(READ_ATTEMPTS):
        try:
            before = os.stat(path)
            # A pipe or device would block the hash; the loader skips it with a reason.
            sha = file_sha256(path) if stat.S_ISREG(before.st_mode) else ""
            results = parser.parse(path, rel, options)
            after = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return None, [Skipped(rel, f"could not be read: {exc.strerror or exc}")]
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
            doc_ids = tuple(r.doc_id for r in results if isinstance(r, Document))
            return FileRecord(rel, after.st_size, after.st_mtime_ns, sha, doc_ids), results
        log.info("%s changed while being read; reading it again", rel)
    return None, results


@dataclass(frozen=True)
class Snapshot:
    """One consistent read of a file, to be parsed elsewhere (a cluster's worker): its record
    (size, mtime and the sha256 of exactly these bytes) and the bytes."""

    record: FileRecord
    data: bytes


def snapshot(job: ParseJob) -> Snapshot | Parsed:
    """The file's bytes, or what `_parse_stable` would say of a file refused before reading,
    gone, unreadable or still changing after READ_ATTEMPTS reads."""
    refused = refusal(job.path, job.rel, job.options)
    for _ in range(READ_ATTEMPTS):
        try:
            before = os.stat(job.path)
            if refused is not None:  # never read (a pipe would block, a huge file would fill)
                result: list[LoadResult] = [refused]
                return FileRecord(job.rel, before.st_size, before.st_mtime_ns, "", ()), result
            data = job.path.read_bytes()
            after = os.stat(job.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            unreadable: list[LoadResult] = [
                Skipped(job.rel, f"could not be read: {exc.strerror or exc}")]
            return None, unreadable
        if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
            sha = hashlib.sha256(data).hexdigest()
            return Snapshot(FileRecord(job.rel, after.st_size, after.st_mtime_ns, sha, ()), data)
        log.info("%s changed while being read; reading it again", job.rel)
    return None, []


def parsed(record: FileRecord, results: list[LoadResult]) -> Parsed:
    """A snapshot's record with the documents its bytes gave."""
    doc_ids = tuple(r.doc_id for r in results if isinstance(r, Document))
    return replace(record, doc_ids=doc_ids), results
