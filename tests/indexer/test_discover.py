"""Discovery never follows a symbolic link out of the corpus, and says why."""

from __future__ import annotations

import os
from pathlib import Path

from indexer.discover import discover, discover_files
from tests.factory import write


def test_links_out_of_the_corpus_are_refused_with_a_reason(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    secret = write(tmp_path / "outside/passwd.txt", "root:x:0:0:root:/root:/bin/bash")
    write(corpus / "docs/real.txt", "a real document")
    os.symlink(secret, corpus / "docs/innocent.txt")
    os.symlink(tmp_path / "outside", corpus / "mounted")
    os.symlink(corpus / "docs/real.txt", corpus / "alias.txt")  # inside: followed
    os.symlink("loop-b.txt", corpus / "loop-a.txt")
    os.symlink("loop-a.txt", corpus / "loop-b.txt")
    files, refused = discover_files(corpus)
    assert [f.relative_to(corpus).as_posix() for f in files] == ["alias.txt", "docs/real.txt"]
    reasons = {s.path: s.reason for s in refused}
    assert reasons["docs/innocent.txt"] == (f"symbolic link to {secret}, outside the corpus: "
                                            "not followed")
    assert reasons["mounted"].startswith("symbolic link to ") and "outside" in reasons["mounted"]
    assert reasons["loop-a.txt"] == reasons["loop-b.txt"] == "symbolic link loop: not followed"
    assert discover(corpus) == files
