"""Stage 1, discover: which files of a corpus are candidates for indexing, and which are
refused before reading.

A symbolic link is followed only when its target lies inside the corpus: a link to a system
file with a `.txt` name must never be indexed and shown to partners.
"""

from __future__ import annotations

import os
from pathlib import Path

from indexer.load.loader import Skipped
from indexer.manifest import MANIFEST_NAME


def discover(corpus: Path, exclude: Path | None = None) -> list[Path]:
    """Every candidate file below the corpus, sorted (links out of the corpus left out)."""
    return discover_files(corpus, exclude)[0]


def discover_files(corpus: Path, exclude: Path | None = None) -> tuple[list[Path], list[Skipped]]:
    """(candidate files, sorted; links refused with a reason). Hidden files and the manifest
    are not data. `exclude` is a directory never to descend into: an index kept inside its own
    corpus. Directory links are not descended into; one pointing outside is reported.
    """
    found: list[Path] = []
    refused: list[Skipped] = []
    root = corpus.resolve()
    excluded = exclude.resolve() if exclude else None
    for dirpath, dirnames, filenames in os.walk(corpus):
        here = Path(dirpath)
        for name in sorted(d for d in dirnames if (here / d).is_symlink()):
            if (problem := _outside(here / name, root)) is not None:
                refused.append(Skipped((here / name).relative_to(corpus).as_posix(), problem))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (here / d).resolve() != excluded)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            if path.parent == corpus and name == MANIFEST_NAME:
                continue
            if path.is_symlink() and (problem := _outside(path, root)) is not None:
                refused.append(Skipped(path.relative_to(corpus).as_posix(), problem))
                continue
            found.append(path)
    return found, refused


def _outside(link: Path, root: Path) -> str | None:
    """Why a symbolic link is not followed, or None when its target is inside the corpus."""
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        return None  # dangling: the loader reports it as "not a regular file"
    except (OSError, RuntimeError):
        return "symbolic link loop: not followed"
    if target != root and root not in target.parents:
        return f"symbolic link to {target}, outside the corpus: not followed"
    return None
