"""`serve` and its port and signals (search_api/cli/listening.py): the port is bound before
anything starts, and SIGTERM or SIGINT stop the server through its clean-up, exit 0."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import httpx
import pytest

from indexer.build import BuildReport
from tests.deployment import run, server


def test_a_port_in_use_is_refused_before_anything_starts(
        access_index: tuple[Path, BuildReport]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = run("search_api", "serve", "--index", str(access_index[0]), "--port", str(port))
    assert ran.returncode == 1, ran.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in ran.stderr and "--port" in ran.stderr
    assert "model" not in ran.stderr.lower() and "Traceback" not in ran.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_through_its_clean_up(
        access_index: tuple[Path, BuildReport], sig: signal.Signals) -> None:
    """uvicorn raises the signal again once it has stopped; the server used to die of it (exit
    143 on SIGTERM) before closing its services."""
    with server(access_index[0]) as running:
        assert httpx.get(f"{running.url}/healthz", timeout=10).status_code == 200
        running.process.send_signal(sig)
        assert running.process.wait(timeout=30) == 0, running.log.read_text()[-2000:]
    output = running.log.read_text()
    assert "Application shutdown complete" in output and "Traceback" not in output
