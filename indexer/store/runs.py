"""The outcome of every build run, published or not: what monitoring and the Builds page read.

    INDEX/runs.jsonl    one JSON line per `python -m indexer build` run, oldest first

A generation's report.json only exists for a build that published. A build that failed (exit
1, 2) published nothing, so this line is its only trace beside the index: the server's
/metrics exports the newest one (pks_build_last_run_*), which is how a failed night reaches
an alert before the 26 hours without a successful build have passed.

Each line is written with one `write(2)` on an O_APPEND descriptor, so two runs (one refused
by the build lock, exit 4) never interleave; a torn last line is skipped by readers. A line
is ~300 bytes a night: the file needs no rotation, and readers only read its tail.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RUNS = "runs.jsonl"
TAIL_BYTES = 256 * 1024  # readers look at the newest runs only
MAX_ERROR = 1000  # characters of an error message kept in the record


@dataclass(frozen=True)
class BuildRun:
    started_at: str  # ISO 8601, UTC
    finished_at: str
    seconds: float
    exit_code: int  # the CLI's: 0 ok, 1 failed, 2 configuration, 3 published with skips, 4 locked
    generation: str | None  # the generation it published; None when nothing was published
    error: str | None = None
    skipped: int = 0  # files skipped, or kept in their previous version

    @property
    def published(self) -> bool:
        return self.generation is not None


def record_run(root: Path, run: BuildRun) -> None:
    """Append `run` to INDEX/runs.jsonl. Only for an existing index directory: a mistyped
    --index must not leave a directory behind. Raises OSError (the caller logs it)."""
    if not root.is_dir():
        return
    record = asdict(run)
    if run.error is not None:
        record["error"] = run.error[:MAX_ERROR]
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(root / RUNS, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a run died mid-line: never glue a record onto it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _run(line: bytes) -> BuildRun | None:
    try:
        record = json.loads(line)
        return BuildRun(str(record["started_at"]), str(record["finished_at"]),
                        float(record["seconds"]), int(record["exit_code"]),
                        record.get("generation"), record.get("error"),
                        int(record.get("skipped", 0)))
    except (ValueError, KeyError, TypeError):
        return None  # a torn line (a power cut mid-write) or a foreign one


def read_runs(root: Path, limit: int = 20) -> list[BuildRun]:
    """The newest `limit` recorded runs, newest first; [] when none was recorded."""
    try:
        with open(root / RUNS, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            lines = handle.read().split(b"\n")
    except FileNotFoundError:
        return []
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line read is cut off
    runs = [run for line in lines if line.strip() and (run := _run(line)) is not None]
    return runs[::-1][:limit]
