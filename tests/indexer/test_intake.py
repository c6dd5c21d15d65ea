"""Files that change or vanish while the build reads them: re-read or skipped, never a crash.
The parser here really edits or deletes the file on disk while it is being parsed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from indexer.incremental import Previous
from indexer.intake import FileOptions, LocalParsing, read_corpus
from indexer.load.isolate import IsolatedParser
from indexer.load.loader import LoadOptions, LoadResult, load_file
from indexer.manifest import Manifest
from tests.factory import write


def meddling_parser(path: Path, rel: str, options: LoadOptions) -> Iterator[LoadResult]:
    """Parses, while someone else edits ('edited-once', once), keeps editing ('churn') or
    deletes ('vanish') the file."""
    results = list(load_file(path, rel, options))
    marker = path.with_name(f".{path.name}.seen")
    if path.name.startswith("edited-once") and not marker.exists():
        marker.write_text("x")
        with open(path, "a") as handle:
            handle.write(" Appended while the build was reading.")
    elif path.name.startswith("churn"):
        with open(path, "a") as handle:
            handle.write(" more")
    elif path.name.startswith("vanish"):
        path.unlink()
    yield from results


def test_a_file_changed_while_read_is_read_again_and_one_gone_is_skipped(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    files = [write(corpus / "churn.txt", "This file never stops changing."),
             write(corpus / "edited-once.txt", "First version of the note."),
             write(corpus / "vanish.txt", "Deleted while it was parsed.")]
    manifest = Manifest(corpus / "access.yaml", ("a",), ())
    with IsolatedParser(60, parse=meddling_parser) as parser:
        intake = read_corpus(corpus, files, Previous(None, False, False), LocalParsing(parser),
                             FileOptions(manifest, {}), LoadOptions())
    [edited] = intake.outcomes
    assert edited.record.path == "edited-once.txt"
    assert edited.parsed[0].pages[0].text.endswith("Appended while the build was reading.")
    assert edited.record.size == (corpus / "edited-once.txt").stat().st_size
    reasons = {s.path: s.reason for s in intake.skipped}
    assert reasons == {
        "churn.txt": "kept changing while being read (it is read again at the next build)",
        "vanish.txt": "disappeared while being read"}
