"""One build (or rollback) at a time per index directory.

The lock is an ``flock`` on ``INDEX/.build.lock``: the kernel releases it when its holder exits,
however it exits (SIGKILL included), so a lock left by a dead process never blocks. The file also
holds the holder's PID, only to name it in the message a second build prints; a stale PID in the
file means nothing once the flock is free.

An flock belongs to the open file, which a forked child shares: a helper process some library
forks (and that outlives its parent) would keep a dead build's lock. A forked child therefore
closes its copy of every lock descriptor at once; the parent's lock is untouched.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = ".build.lock"
_HELD: set[int] = set()  # lock descriptors held by this process


def _close_in_child() -> None:
    for fd in list(_HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


class LockHeld(Exception):
    """Another live process holds the index's build lock (exit code 4)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid else "another process (PID not yet written)"
        super().__init__(f"another build is running: {holder} holds {path}; "
                         "nothing was changed, try again when it finishes")
        self.path = path
        self.pid = pid


def holder_pid(path: Path) -> int | None:
    """The PID written in the lock file, if any (it may be stale: only the flock counts)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """Hold the index's build lock, or raise LockHeld at once (never wait)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK
    # O_CREAT without O_TRUNC: opening must not erase the PID of a live holder.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(path, holder_pid(path)) from None
        _HELD.add(fd)
        os.ftruncate(fd, 0)  # whatever a dead holder left is stale now
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released cleanly: no PID left to mislead anyone
    finally:
        _HELD.discard(fd)
        os.close(fd)  # closing drops the flock
