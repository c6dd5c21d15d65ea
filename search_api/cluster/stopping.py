"""SIGTERM and SIGINT for a server on Ray: it stops within a bound and removes what it deployed.

While the server starts (joining the cluster, loading the model, deploying and waiting for the
shards), `starting(grace)` makes the first SIGTERM or SIGINT raise `Stopped` in the main thread,
so the start-up unwinds through its clean-up (lifecycle.py deletes the applications it had
deployed, a private cluster is stopped); a second signal exits at once. Whatever the process
is doing, a call into Ray or a model compile that does not return included, it exits `grace`
seconds after the first signal: Python's C-level signal handler writes to a wake-up socket at
once, and a watchdog thread reading it ends the process when the time is up.

While it serves, uvicorn's own handling stops it gracefully (search_api/cli/listening.py
absorbs the signal uvicorn raises again afterwards), and `serving()` turns a signal that arrives
outside uvicorn's run into `Stopped`, so the server's clean-up runs; Ray's handler (a bare exit)
is never left in place. That clean-up runs under `ending_within()`: a
cluster that went away meanwhile makes Ray's calls wait a minute or more, and the process ends
anyway when the time is up.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A SIGTERM or SIGINT: unwind and clean up (a BaseException, as KeyboardInterrupt is, so
    that no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal = signal.Signals(signum).name


@contextmanager
def starting(grace: float) -> Iterator[None]:
    """The start-up of a server on Ray: see the module's docstring."""
    main = threading.current_thread() is threading.main_thread()
    if not main:  # signals reach only the main thread: nothing to arm
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    seen = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if seen.is_set():
            _exit(f"{signal.Signals(signum).name} again while stopping; exiting now")
        seen.set()
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    wakeup = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(reader, grace), name="stop-watchdog",
                     daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not seen.is_set():
            writer.close()  # the watchdog sees the end of the socket and returns


def _watch(reader: socket.socket, grace: float) -> None:
    """Wait for the first signal's byte, then give the start-up `grace` seconds to unwind."""
    with reader:
        try:
            got = reader.recv(1)
        except OSError:
            return
        if not got:
            return
    threading.Event().wait(grace)
    _exit(f"still stopping {grace:g} s after the signal; exiting now (Serve applications it "
          "deployed may remain: `serve status`, docs/CLUSTER.md)")


@contextmanager
def serving() -> Iterator[None]:
    """While uvicorn serves: a signal that arrives outside uvicorn's own handling (just before
    it takes over, or after it has stopped) becomes `Stopped`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: FrameType | None) -> Any:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def ending_within(seconds: float) -> Iterator[None]:
    """The server's clean-up: if the block has not ended `seconds` after it began (Ray waiting
    for a cluster that went away), the process exits 1 then."""
    done = threading.Event()

    def watch() -> None:
        if not done.wait(seconds):
            _exit(f"stopping took more than {seconds:g} s; exiting now (Serve applications it "
                  "deployed may remain: `serve status`, docs/CLUSTER.md)")

    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def _exit(message: str) -> None:
    """End the process now: one line on stderr, exit code 1."""
    try:
        os.write(sys.stderr.fileno(), f"error: {message}\n".encode())
    finally:
        os._exit(1)
