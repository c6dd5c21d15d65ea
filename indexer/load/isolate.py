"""Parse files in a separate process with a time limit, so one bad file cannot stop a build.

A PDF that sends the parser into a loop, or a parser that crashes the interpreter (a segfault in
a C extension), costs that one file: it is skipped with a reason and the build goes on. One
long-lived worker parses every file (starting a process per file would cost more than most
parses); it is replaced after a timeout or a crash. It is started with 'spawn', never 'fork':
the parent has torch's thread pool running, which a forked child would inherit broken.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from indexer.load.loader import LoadOptions, LoadResult, Skipped, load_file
from indexer.progress import LOG_FORMAT

log = logging.getLogger(__name__)
Parser = Callable[[Path, str, LoadOptions], Iterator[LoadResult]]
START_SECONDS = 300.0  # importing the parsers on a busy machine; not part of any file's limit


def _serve(conn: Connection, parse: Parser, log_level: int) -> None:
    """The worker's loop: one (path, rel, options) in, the list of its results out."""
    # Problems reach the report as skips and warnings; the parsers' own chatter (pypdf's
    # "EOF marker not found") would only be unformatted noise in the build's log.
    logging.basicConfig(level=max(log_level, logging.WARNING), format=LOG_FORMAT)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        path, rel, options = job
        try:
            results: list[LoadResult] = list(parse(path, rel, options))
        except Exception as exc:  # the loaders turn most failures into skips; this is the rest
            results = [Skipped(rel, f"could not be read: {type(exc).__name__}: {exc}")]
        conn.send(results)


class IsolatedParser:
    """Parses one file at a time in a worker process, with a per-file time limit in seconds."""

    def __init__(self, timeout: float, parse: Parser = load_file) -> None:
        self.timeout = timeout
        self._parse = parse
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is not None:
            return self._conn
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, daemon=True, name="pks-parser", args=(
            child, self._parse, logging.getLogger().getEffectiveLevel()))
        proc.start()
        child.close()
        try:
            ready = parent.poll(START_SECONDS) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            proc.kill()
            raise RuntimeError(f"the parser worker process did not start (exit code "
                               f"{proc.exitcode}); see the log above for its error")
        self._proc, self._conn = proc, parent
        return parent

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def parse(self, path: Path, rel: str, options: LoadOptions) -> list[LoadResult]:
        """The file's results; a timeout or a crash of the worker becomes a Skipped."""
        conn = self._start()
        started = time.monotonic()
        try:
            conn.send((path, rel, options))
            if not conn.poll(self.timeout):
                self._stop()
                return [Skipped(rel, f"took longer than {self.timeout:g} s to parse (raise "
                                     "PKS_PARSE_TIMEOUT_SECONDS if it is just large)")]
            results: list[LoadResult] = conn.recv()
            return results
        except (EOFError, OSError):
            code = self._proc.exitcode if self._proc is not None else None
            if self._proc is not None and code is None:
                self._proc.join(5)
                code = self._proc.exitcode
            self._stop()
            return [Skipped(rel, f"the parser crashed on this file ({_describe(code)}) after "
                                 f"{time.monotonic() - started:.1f} s")]

    def close(self) -> None:
        if self._conn is not None and self._proc is not None:
            try:
                self._conn.send(None)
                self._proc.join(5)
            except OSError:
                pass
        self._stop()

    def __enter__(self) -> IsolatedParser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
