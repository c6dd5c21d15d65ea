"""A build SIGKILLed at any phase leaves the served index intact, and the next build completes
and leaves no debris. Real processes: the build's own log says which phase it is in."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from indexer.store.layout import CURRENT, GENERATIONS
from indexer.store.lock import LOCK
from indexer.store.reader import Generation
from indexer.store.runs import EXIT_INTERRUPTED, RUNS, read_runs
from tests.conftest import make_access_corpus
from tests.factory import write
from tests.indexer.test_cli_reindex import bulk, indexer, start_build, wait_for_line

# The builds that are killed are real processes; the first and the last run in this one.


def served(index: Path) -> set[str]:
    """The documents the live generation answers with (opening it proves it is whole)."""
    gen = Generation.open_live(index)
    return {p.doc_id for p in gen.passages(gen.all_chunk_ids().tolist()).values()}


@pytest.mark.slow
def test_sigkill_at_every_phase_leaves_the_live_index_and_the_next_build_is_clean(
        tmp_path: Path) -> None:
    corpus, index = make_access_corpus(tmp_path / "corpus"), tmp_path / "index"
    assert indexer("build", "--corpus", str(corpus), "--index", str(index)).returncode == 0
    live, docs = (index / CURRENT).read_text(), served(index)
    bulk(corpus)  # embedding now takes long enough to be killed in the middle of it
    for phase in ("phase loading", "phase writing", "phase embedding"):
        build = start_build(corpus, index)
        wait_for_line(build, phase)
        build.send_signal(signal.SIGKILL)
        build.wait()
        assert (index / CURRENT).read_text() == live, phase
        assert served(index) == docs, phase
        # The Builds page and /metrics see the kill at once, not last night's success.
        newest = read_runs(index)[0]
        assert newest.exit_code == EXIT_INTERRUPTED and not newest.published, phase

    # Publishing: the kill lands before or after the switch; either way one whole generation.
    (corpus / "shared/bulk.jsonl").unlink()
    write(corpus / "alpha/new-finding.txt", "KESTREL batch 9 reached 15.8 mS/cm.")
    build = start_build(corpus, index)
    wait_for_line(build, "phase publishing")
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert served(index) in (docs, docs | {"alpha/new-finding.txt"})
    switched = (index / CURRENT).read_text().strip()
    served_generation = switched if switched != live.strip() else None

    final = indexer("build", "--corpus", str(corpus), "--index", str(index))
    assert final.returncode == 0, final.stderr
    assert served(index) == docs | {"alpha/new-finding.txt"}
    names = [p.name for p in (index / GENERATIONS).iterdir()]
    assert not [n for n in names if n.endswith(".tmp")], names
    assert {p.name for p in index.iterdir()} == {LOCK, CURRENT, GENERATIONS, RUNS}  # no .tmp
    assert (index / LOCK).read_text() == ""
    # Each killed run was recorded as interrupted by the build after it (never a half line);
    # the one killed while publishing names its generation if the switch had happened.
    recorded = read_runs(index)
    assert [r.exit_code for r in recorded] == [0] + [EXIT_INTERRUPTED] * 4 + [0]
    assert recorded[1].generation in (None, served_generation)
