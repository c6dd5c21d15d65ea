"""Which files of a corpus are candidates for indexing."""

from __future__ import annotations

import os
from pathlib import Path

from indexer.manifest import MANIFEST_NAME


def discover(corpus: Path, exclude: Path | None = None) -> list[Path]:
    """Every candidate file below the corpus, sorted; hidden files and the manifest are not data.

    `exclude` is a directory never to descend into: an index kept inside its own corpus.
    """
    found: list[Path] = []
    excluded = exclude.resolve() if exclude else None
    for dirpath, dirnames, filenames in os.walk(corpus):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (Path(dirpath) / d).resolve() != excluded)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.parent == corpus and name == MANIFEST_NAME:
                continue
            found.append(path)
    return found
