"""Parsing in a worker process: a file that loops or crashes the parser costs only that file."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

from indexer.load.isolate import IsolatedParser
from indexer.load.loader import Document, LoadOptions, LoadResult, Skipped, load_file
from tests.factory import write, write_pdf


def crash_on_bomb(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    """A parser with a segfault on one input (as a C extension can have): kills its process."""
    if path.name.startswith("bomb"):
        os.kill(os.getpid(), signal.SIGSEGV)
    yield from load_file(path, rel, options)


def test_a_parse_over_the_time_limit_is_skipped_and_the_next_file_still_parses(
        tmp_path: Path) -> None:
    # 400 real text pages: pypdf takes well over 50 ms to extract them, even on a fast machine.
    slow = write_pdf(tmp_path / "slow.pdf", [f"Page {i} of a long specification. " * 40
                                             for i in range(400)])
    fine = write(tmp_path / "fine.txt", "A small note about anode coatings.")
    with IsolatedParser(timeout=0.05) as parser:
        parser.parse(fine, "fine.txt", LoadOptions())  # the worker is up: only parsing is timed
        results = parser.parse(slow, "slow.pdf", LoadOptions())
        assert results == [Skipped("slow.pdf", "took longer than 0.05 s to parse (raise "
                                               "PKS_PARSE_TIMEOUT_SECONDS if it is just large)")]
        parser.timeout = 60
        after = parser.parse(fine, "fine.txt", LoadOptions())  # a fresh worker took over
    assert [type(r) for r in after] == [Document]


def test_a_parser_crash_is_a_skip_and_the_worker_is_replaced(tmp_path: Path) -> None:
    bomb = write(tmp_path / "bomb.txt", "this input crashes the parser")
    fine = write(tmp_path / "fine.txt", "A small note about cathode coatings.")
    with IsolatedParser(timeout=60, parse=crash_on_bomb) as parser:
        results = parser.parse(bomb, "bomb.txt", LoadOptions())
        assert len(results) == 1 and isinstance(results[0], Skipped)
        assert results[0].reason.startswith("the parser crashed on this file (killed by SIGSEGV)")
        after = parser.parse(fine, "fine.txt", LoadOptions())
    assert isinstance(after[0], Document) and after[0].title == "fine"


def test_an_exception_in_the_parser_is_a_skip_with_its_message(tmp_path: Path) -> None:
    with IsolatedParser(timeout=60) as parser:
        gone = parser.parse(tmp_path / "missing.txt", "missing.txt", LoadOptions())
    assert len(gone) == 1 and isinstance(gone[0], Skipped) and "\n" not in gone[0].reason
