"""`serve --workers N` checks, once and before any worker starts, what would make every worker
fail, and says so in one message (exit 2) instead of N crash loops."""

from __future__ import annotations

from pathlib import Path

from indexer.build import BuildReport
from tests.deployment import free_port, run


def test_workers_are_not_started_without_a_published_index(tmp_path: Path) -> None:
    ran = run("search_api", "serve", "--index", str(tmp_path / "nothing"), "--workers", "2")
    assert ran.returncode == 2 and "no published index" in ran.stderr


def test_workers_are_not_started_without_their_database(
        access_index: tuple[Path, BuildReport]) -> None:
    url = f"postgresql://pks@127.0.0.1:{free_port()}/pks?connect_timeout=1"
    ran = run("search_api", "serve", "--index", str(access_index[0]), "--workers", "2",
              env={"PKS_DATABASE_URL": url, "PKS_DATABASE_TIMEOUT_SECONDS": "1"})
    assert ran.returncode == 2 and "cannot connect to PostgreSQL at 127.0.0.1" in ran.stderr


def test_a_bad_worker_count_is_refused(tmp_path: Path) -> None:
    ran = run("search_api", "serve", "--index", str(tmp_path), "--workers", "0")
    assert ran.returncode == 2 and "workers" in ran.stderr

