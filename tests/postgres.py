"""A real PostgreSQL for tests: Debian's server in a temporary directory, never a mock.

`postgres_server()` runs initdb and pg_ctl as an unprivileged user (PostgreSQL refuses root:
when the tests run as root, the cluster belongs to the `postgres` user Debian's package makes,
or `nobody`), listening on a free loopback port and a socket in its own directory, with
fsync off (a test database need not survive a power cut). It is stopped and removed when the
block ends. `new_database(url)` makes an empty database on it, so each test starts clean.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.deployment import free_port

INSTALL = "apt-get install postgresql (Debian's server: initdb and pg_ctl)"


def bindir() -> Path | None:
    """Debian keeps the server's programs in /usr/lib/postgresql/VERSION/bin, off the PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(re.sub(r"\D", "", p.parent.parent.name) or 0))
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _owner() -> str | None:
    """Who runs the server: ourselves, unless we are root (then an unprivileged user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' user")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields the URL of its `postgres` database as the superuser `pks`."""
    programs = bindir()
    if programs is None:
        raise RuntimeError(f"PostgreSQL is not installed: {INSTALL}")
    user = _owner()
    base = Path(tempfile.mkdtemp(prefix="pks-postgres-"))  # /tmp: reachable by that user
    data, port = base / "data", free_port()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)

    def as_owner(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, user=user, cwd=base, capture_output=True, text=True,
                              timeout=120, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})

    try:
        done = as_owner(str(programs / "initdb"), "-D", str(data), "-U", "pks", "-A", "trust",
                        "-E", "UTF8", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        done = as_owner(str(programs / "pg_ctl"), "-D", str(data), "-l", str(base / "log"),
                        "-o", options, "-w", "-t", "60", "start")
        if done.returncode:
            log = (base / "log").read_text() if (base / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}{log}")
        try:
            yield f"postgresql://pks@127.0.0.1:{port}/postgres"
        finally:
            as_owner(str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


_made = iter(range(1, 1_000_000))


def new_database(server_url: str) -> str:
    """An empty database on the server; returns its URL."""
    import psycopg

    name = f"pks_test_{os.getpid()}_{next(_made)}_{int(time.time() * 1000) % 100000}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    return server_url.rsplit("/", 1)[0] + f"/{name}"
