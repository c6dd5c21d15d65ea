"""INDEX/runs.jsonl: every build run's outcome, appended, read newest first from its tail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from indexer.store import runs
from indexer.store.runs import (
    EXIT_INTERRUPTED,
    RUNNING,
    RUNS,
    BuildRun,
    mark_running,
    read_runs,
    record_run,
    settle_interrupted,
)


def night(n: int, code: int = 0, error: str | None = None) -> BuildRun:
    return BuildRun(f"2026-11-{n:02d}T02:30:00+00:00", f"2026-11-{n:02d}T02:41:00+00:00", 660.0,
                    code, None if code in (1, 2, 4) else f"gen-{n}", error, 0)


def test_runs_are_appended_and_read_newest_first(tmp_path: Path) -> None:
    assert read_runs(tmp_path) == []
    record_run(tmp_path, night(1))
    record_run(tmp_path, night(2, 1, "build failed: " + "x" * 5000))
    record_run(tmp_path, night(3, 3))
    newest, failed, first = read_runs(tmp_path)
    assert (newest.exit_code, newest.generation, newest.published) == (3, "gen-3", True)
    assert (failed.exit_code, failed.published) == (1, False)
    assert failed.error is not None and len(failed.error) == runs.MAX_ERROR  # bounded line
    assert first == night(1)
    assert read_runs(tmp_path, limit=1) == [newest]


def test_a_torn_line_is_skipped_and_a_missing_index_is_never_created(tmp_path: Path) -> None:
    record_run(tmp_path, night(1))
    with open(tmp_path / RUNS, "a") as handle:
        handle.write('{"started_at": "2026-11-02T02:30')  # a power cut mid-write
    record_run(tmp_path, night(3))
    assert [r.started_at[:10] for r in read_runs(tmp_path)] == ["2026-11-03", "2026-11-01"]
    record_run(tmp_path / "mistyped", night(4))
    assert not (tmp_path / "mistyped").exists()


def test_only_the_tail_is_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runs, "TAIL_BYTES", 1000)
    for n in range(1, 29):
        record_run(tmp_path, night(n))
    assert (tmp_path / RUNS).stat().st_size > 4000
    found = read_runs(tmp_path, limit=100)
    assert 2 <= len(found) < 10  # the newest nights only, each a whole line
    assert [int(r.started_at[8:10]) for r in found] == list(range(28, 28 - len(found), -1))


def dead_pid() -> int:
    """A PID that no process of this host has now: a child that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_run_reads_as_interrupted_at_once_and_is_recorded_by_the_next(
        tmp_path: Path) -> None:
    record_run(tmp_path, night(1))
    mark_running(tmp_path, "2026-11-02T02:30:00+00:00")
    assert read_runs(tmp_path) == [night(1)]  # this process is alive: the build is running
    marker = json.loads((tmp_path / RUNNING).read_text())
    marker["pid"] = dead_pid()  # as if the build had been SIGKILLed
    (tmp_path / RUNNING).write_text(json.dumps(marker))

    shown, before = read_runs(tmp_path)
    assert (shown.started_at, shown.exit_code, shown.published) == \
        ("2026-11-02T02:30:00+00:00", EXIT_INTERRUPTED, False)
    assert shown.error is not None and "killed" in shown.error and before == night(1)
    assert read_runs(tmp_path, limit=1) == [shown]
    assert (tmp_path / RUNS).read_text().count("\n") == 1  # readers write nothing

    settled = settle_interrupted(tmp_path, "gen-1")  # the next build, under the lock
    assert settled is not None and settled.generation is None  # gen-1 is older than the run
    assert not (tmp_path / RUNNING).exists()
    assert [r.exit_code for r in read_runs(tmp_path)] == [EXIT_INTERRUPTED, 0]
    assert settle_interrupted(tmp_path, "gen-1") is None  # recorded once


def test_a_run_killed_after_it_published_is_recorded_with_its_generation(
        tmp_path: Path) -> None:
    mark_running(tmp_path, "2026-11-02T02:30:00+00:00")
    settled = settle_interrupted(tmp_path, "20261102T024100123456Z-abcdef")
    assert settled is not None and settled.generation == "20261102T024100123456Z-abcdef"


def test_a_marker_of_another_host_reads_as_running(tmp_path: Path) -> None:
    (tmp_path / RUNNING).write_text(json.dumps(
        {"started_at": "2026-11-02T02:30:00+00:00", "pid": dead_pid(), "host": "elsewhere"}))
    assert read_runs(tmp_path) == []
    (tmp_path / RUNNING).write_text("{torn")
    assert read_runs(tmp_path) == [] and settle_interrupted(tmp_path, None) is None
    assert not (tmp_path / RUNNING).exists()
