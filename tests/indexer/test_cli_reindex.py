"""The nightly job as cron runs it: the lock (exit 4, naming the holder, and a SIGKILLed
holder that blocks nothing: a real build process), --report, --quiet, timestamped log lines,
exit 3 for a file kept in its previous version, and the generations / rollback commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.store.layout import CURRENT, GENERATIONS, REPORT
from indexer.store.lock import LOCK
from tests.conftest import make_access_corpus
from tests.deployment import ENV, ROOT, Ran, run
from tests.factory import write, write_jsonl

STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (INFO|WARNING|ERROR) ")


def indexer(*args: str) -> Ran:
    return run("indexer", *args)


def start_build(corpus: Path, index: Path) -> subprocess.Popen[str]:
    """A build as a separate process, to hold the lock or to be killed."""
    return subprocess.Popen(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index",
         str(index)], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)


def wait_for_line(proc: subprocess.Popen[str], needle: str) -> list[str]:
    """Read the build's log until a line contains `needle` (the build is then past it)."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"the build ended before logging {needle!r}: {''.join(seen)}")


def bulk(corpus: Path, n: int = 300) -> None:
    """Enough distinct text that a build is still embedding minutes later."""
    write_jsonl(corpus / "shared/bulk.jsonl", [
        {"_id": f"bulk-{i}", "title": f"Maintenance log {i}",
         "text": " ".join(f"Entry {i}.{j}: line {j * i % 97} of coater {i % 13} checked, "
                          f"tension {j + i} N." for j in range(60))} for i in range(n)])


@pytest.mark.slow
def test_second_build_exits_4_naming_the_holder_and_a_killed_holder_blocks_nothing(
        tmp_path: Path) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    bulk(corpus)
    first = start_build(corpus, index)
    try:
        wait_for_line(first, "phase model")
        second = indexer("build", "--corpus", str(corpus), "--index", str(index),
                         "--report", str(tmp_path / "refused.json"))
        assert second.returncode == 4, second.stderr
        refused = json.loads((tmp_path / "refused.json").read_text())  # never last night's
        assert refused["exit_code"] == 4 and str(first.pid) in refused["error"]
        assert f"another build is running: process {first.pid} holds" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    assert (index / LOCK).read_text().strip() == str(first.pid)  # stale: its holder is dead
    (corpus / "shared/bulk.jsonl").unlink()
    third = indexer("build", "--corpus", str(corpus), "--index", str(index))
    assert third.returncode == 0, third.stderr
    assert (index / LOCK).read_text() == ""
    assert not [p for p in (index / GENERATIONS).iterdir() if p.name.endswith(".tmp")]


def test_report_quiet_logs_kept_version_generations_and_rollback(tmp_path: Path) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    first = indexer("build", "--corpus", str(corpus), "--index", str(index),
                    "--report", str(tmp_path / "night-1.json"))
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), first.stderr  # cron-friendly
    assert any("phase embedding" in line for line in lines)
    report = json.loads((tmp_path / "night-1.json").read_text())
    live = (index / CURRENT).read_text().strip()
    assert report == json.loads((index / GENERATIONS / live / REPORT).read_text())
    assert (report["generation"], report["documents"], report["added"]) == (live, 10, 10)
    assert report["embedded"] == report["chunks"] and report["skipped"] == []

    write(corpus / "alpha/pilot-line.pdf", b"%PDF-1.7\n1 0 obj truncated by a failed copy")
    second = indexer("build", "--corpus", str(corpus), "--index", str(index), "--quiet",
                     "--report", str(tmp_path / "night-2.json"))
    assert second.returncode == 3, second.stderr
    assert second.stderr == ""  # --quiet: only the summary (and errors, of which there are none)
    assert "    - alpha/pilot-line.pdf: kept previous version: corrupt or unreadable PDF" \
        in second.stdout
    night2 = json.loads((tmp_path / "night-2.json").read_text())
    assert night2["kept_previous"][0]["path"] == "alpha/pilot-line.pdf"
    assert (night2["embedded"], night2["unchanged"], night2["files_parsed"]) == (0, 10, 1)

    listing = indexer("generations", "--index", str(index))
    assert listing.returncode == 0
    rows = [line for line in listing.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == 2 and rows[0].startswith(f"  {live} ") and rows[1].startswith("* ")
    assert rows[1].split()[3:5] == ["10", str(report["chunks"])]
    back = indexer("rollback", "--index", str(index))
    assert back.returncode == 0 and (index / CURRENT).read_text().strip() == live
    again = indexer("rollback", "--index", str(index))
    assert again.returncode == 1 and "no generation older than the live one" in again.stderr
    unknown = indexer("rollback", "--index", str(index), "--to", "19990101T000000Z-000000")
    assert unknown.returncode == 1 and "no complete generation named" in unknown.stderr
