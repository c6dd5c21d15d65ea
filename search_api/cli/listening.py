"""The HTTP socket of `serve`, bound and listening before the service is assembled.

uvicorn binds its port only after the application has started, which for a server on Ray is
after a private cluster has started: Ray's processes take free ports as they come up and could
take the very one this server was told to use (seen in the suite: the server then exited with
"address already in use" after deploying its shards). Bound first, the port is this server's;
a port already in use is refused at once, before a model is loaded or a cluster started; and a
request that arrives during start-up waits in the backlog instead of being refused.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
BACKLOG = 2048  # uvicorn's default


def listening(host: str, port: int) -> socket.socket | None:
    """A socket bound to host:port and listening, or None with the reason on stderr."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn decides it
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart within TIME_WAIT
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)  # listening: no other socket may share the port from now on
    except OSError as exc:
        sock.close()
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc} (is another "
              "server there? choose another --port or PKS_PORT)", file=sys.stderr)
        return None
    return sock


def run_on(sock: socket.socket, app: Any) -> None:
    """uvicorn serving `app` on the socket `listening` gave, until SIGTERM or SIGINT: then it
    stops gracefully and this returns, so the caller's clean-up runs (the audit flushed, the
    database's connections closed, Ray's applications deleted)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    # proxy_headers=False: the SSO check must see the real peer, not a forwarded-for claim.
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", proxy_headers=False))
    log.info("serving on http://%s:%d", f"[{host}]" if ":" in host else host, port)
    with _stopping(server):
        server.run(sockets=[sock])


@contextmanager
def _stopping(server: Any) -> Iterator[None]:
    """uvicorn handles SIGTERM and SIGINT while it runs, and once it has stopped raises the
    signal again for the handler it found: with the default one, that ends the process before
    any clean-up (a plain server used to exit 143 with its audit unflushed). The handler it
    finds is this one: it asks uvicorn to stop (for a signal before uvicorn has taken over) and
    otherwise lets `run_on` return. Signals reach only the main thread: elsewhere nothing is
    armed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
