"""Stage 1 as a nightly build runs it: every discovered file is carried over unchanged, parsed
(in an isolated worker, with a time limit), or, when it fails tonight but was indexed before,
kept in its last good version. Only a file that is really gone leaves the index.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from indexer.incremental import Previous, file_sha256
from indexer.isolate import IsolatedParser
from indexer.load import Document, LoadOptions, LoadResult, LoadWarning, Skipped
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


class PasswordSource:
    """access.yaml names an environment variable per file pattern; its value is read here, at
    build time, from the environment the CLI passes in (never from the manifest itself)."""

    def __init__(self, manifest: Manifest, environ: Mapping[str, str]) -> None:
        self._manifest = manifest
        self._environ = environ

    def options(self, rel: str, base: LoadOptions) -> tuple[LoadOptions, str | None]:
        """(options for this file, the name of a variable named for it but not set)."""
        env = self._manifest.password_env_for(rel)
        password = self._environ.get(env) if env else None
        missing = env if env and password is None else None
        return replace(base, password=password), missing


def read_corpus(corpus: Path, files: list[Path], previous: Previous, parser: IsolatedParser,
                passwords: PasswordSource, options: LoadOptions,
                tick: Callable[[], None] = lambda: None) -> Intake:
    intake = Intake()
    for path in files:
        rel = path.relative_to(corpus).as_posix()
        _read_one(path, rel, previous, parser, passwords, options, intake)
        tick()
    return intake


def _read_one(path: Path, rel: str, previous: Previous, parser: IsolatedParser,
              passwords: PasswordSource, base: LoadOptions, intake: Intake) -> None:
    try:
        info = os.stat(path)
        same = previous.unchanged(rel, path, info) if stat.S_ISREG(info.st_mode) else None
    except FileNotFoundError:
        intake.skipped.append(Skipped(rel, "disappeared during the build"))
        return
    except OSError as exc:
        info, same = None, None
        failure = f"could not be read: {exc.strerror or exc}"
    if same is not None:
        intake.carried += 1
        intake.outcomes.append(FileOutcome(same, carried=previous.carry(same)))
        return
    if info is not None:
        options, missing_env = passwords.options(rel, base)
        intake.parsed += 1
        got = _parse_stable(path, rel, options, parser)
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
