"""One build at a time: a second one is refused at once, naming the holder; a dead holder's
lock never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.store.lock import LOCK, LockHeld, build_lock, holder_pid

HOLD = """
import sys, time
from pathlib import Path
from indexer.store.lock import build_lock
with build_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""
ROOT = Path(__file__).resolve().parents[3]


def test_a_second_holder_is_refused_with_the_pid_of_the_first(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld) as refused, build_lock(tmp_path):
            pass
        assert refused.value.pid == holder.pid
        assert f"process {holder.pid} holds {tmp_path / LOCK}" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
    # Killed (SIGKILL) while holding it: the kernel dropped the flock, the stale PID is ignored.
    assert holder_pid(tmp_path / LOCK) == holder.pid
    with build_lock(tmp_path):
        assert holder_pid(tmp_path / LOCK) is not None
    assert holder_pid(tmp_path / LOCK) is None  # released cleanly: no PID left behind


def test_garbage_in_a_stale_lock_file_does_not_matter(tmp_path: Path) -> None:
    (tmp_path / LOCK).write_text("not a pid\n")
    with build_lock(tmp_path):
        pass


FORK_AND_HOLD = """
import os, sys, time
from pathlib import Path
from indexer.store.lock import build_lock
with build_lock(Path(sys.argv[1])):
    child = os.fork()  # as a library's helper process does (OpenVINO's telemetry sender did)
    if child == 0:
        # Said by the helper itself, so only once its at-fork hooks have run (the parent could
        # say it before the helper was first scheduled: a race on a loaded machine).
        print(os.getpid(), flush=True)
        time.sleep(600)
        os._exit(0)
    time.sleep(600)
"""


def test_a_forked_helper_of_a_killed_holder_does_not_keep_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", FORK_AND_HOLD, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    helper = int(holder.stdout.readline())
    try:
        with pytest.raises(LockHeld):  # the holder itself still holds it
            with build_lock(tmp_path):
                pass
        holder.kill()
        holder.wait()
        assert os.path.exists(f"/proc/{helper}")  # the forked helper lives on
        with build_lock(tmp_path):  # and yet the lock is free
            pass
    finally:
        holder.kill()
        os.kill(helper, signal.SIGKILL)
