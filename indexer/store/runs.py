"""The outcome of every build run, published or not: what monitoring and the Builds page read.

    INDEX/runs.jsonl    one JSON line per `python -m indexer build` run, oldest first

A generation's report.json only exists for a build that published. A build that failed (exit
1, 2) published nothing, so this line is its only trace beside the index: the server's
/metrics exports the newest one (pks_build_last_run_*), which is how a failed night reaches
an alert before the 26 hours without a successful build have passed.

Each line is written with one `write(2)` on an O_APPEND descriptor, so two runs (one refused
by the build lock, exit 4) never interleave; a torn last line is skipped by readers. A line
is ~300 bytes a night: the file needs no rotation, and readers only read its tail.

A run killed outright (SIGKILL, the out-of-memory killer, a machine that stopped) records
nothing itself. So a build writes INDEX/.build.running under the lock when it starts and removes
it when it ends; the next build, holding the lock, finds a marker left behind and records that
run as interrupted (exit code 137, as a shell reports a SIGKILLed command). Readers do not wait
for the next build: a marker whose process is gone from this host reads as that interrupted
run at once (a marker written on another host is read as still running).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RUNS = "runs.jsonl"
RUNNING = ".build.running"  # the running build's start, PID and host, under the build lock
EXIT_INTERRUPTED = 137  # a run that stopped without recording its outcome
INTERRUPTED = ("stopped without recording an outcome: killed (by hand or for memory) or its "
               "machine stopped")
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
    """The newest `limit` recorded runs, newest first, an interrupted run not yet recorded
    included (see the module's docstring); [] when none was recorded."""
    recorded = _recorded(root, limit)
    pending = _interrupted(root)
    return ([pending] + recorded)[:limit] if pending is not None else recorded


def mark_running(root: Path, started_at: str) -> None:
    """Say that a build runs (only under the build lock): written whole, then renamed."""
    marker = {"started_at": started_at, "pid": os.getpid(), "host": socket.gethostname()}
    partial = root / (RUNNING + ".tmp")
    partial.write_text(json.dumps(marker), encoding="utf-8")
    os.replace(partial, root / RUNNING)


def clear_running(root: Path) -> None:
    """The build ended, however it ended, and its outcome is about to be recorded."""
    (root / RUNNING).unlink(missing_ok=True)


def settle_interrupted(root: Path, live: str | None) -> BuildRun | None:
    """Under the build lock: record the run that left its marker behind (nobody else can hold
    the lock, so it is dead), then remove the marker. `live`: the generation CURRENT names
    now; if the dead run published it (killed after the switch), the record says so."""
    marker = _marker(root)
    if marker is None:
        clear_running(root)  # an unreadable marker: nothing to record, nothing to keep
        return None
    run = _as_run(marker, live if live is not None and _newer(live, marker[0]) else None)
    record_run(root, run)
    clear_running(root)
    return run


def _marker(root: Path) -> tuple[str, int, str] | None:
    try:
        record = json.loads((root / RUNNING).read_text(encoding="utf-8"))
        return str(record["started_at"]), int(record["pid"]), str(record["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _as_run(marker: tuple[str, int, str], generation: str | None) -> BuildRun:
    found = datetime.now(UTC).isoformat(timespec="seconds")
    return BuildRun(marker[0], found, 0.0, EXIT_INTERRUPTED, generation,
                    f"{INTERRUPTED} (process {marker[1]} on {marker[2]}; found {found})")


def _newer(generation: str, started_at: str) -> bool:
    """Whether a generation's name (its UTC creation time first) is after `started_at`."""
    try:
        made = datetime.strptime(generation[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        return made >= datetime.fromisoformat(started_at).astimezone(UTC)
    except ValueError:
        return False


def _interrupted(root: Path) -> BuildRun | None:
    """A marker whose process is gone from this host, read as the interrupted run it is."""
    marker = _marker(root)
    if marker is None or marker[2] != socket.gethostname() or _alive(marker[1]):
        return None
    return _as_run(marker, None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _recorded(root: Path, limit: int) -> list[BuildRun]:
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
