"""The kept generations of an index: list them, clear a dead build's debris, roll back.

Every change of the live generation goes through ``layout.point_current`` (one atomic rename)
and happens under the build lock, so a rollback never races a build's publish.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from indexer.store.layout import (
    CURRENT,
    GENERATIONS,
    REPORT,
    is_complete,
    live_generation_dir,
    point_current,
)
from indexer.store.lock import build_lock


class RollbackError(Exception):
    """No generation to roll back to, or the one named is not a complete generation."""


@dataclass(frozen=True)
class GenerationInfo:
    name: str
    built_at: str  # ISO 8601, UTC
    documents: int | None
    chunks: int | None
    live: bool
    # The build's report.json as written (indexer/report.py); {} when unreadable. Read by the
    # Builds page and /metrics, which cannot import the pipeline's BuildReport.
    report: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


def _built_at(name: str, report: dict[str, object]) -> str:
    if isinstance(report.get("finished_at"), str):
        return str(report["finished_at"])
    for fmt in ("%Y%m%dT%H%M%S%fZ", "%Y%m%dT%H%M%SZ"):  # older names had no microseconds
        try:
            return datetime.strptime(name.split("-")[0], fmt).replace(tzinfo=UTC).isoformat()
        except ValueError:
            continue
    return ""


def list_generations(root: Path) -> list[GenerationInfo]:
    """Complete generations, oldest first; reads only each report.json (cheap)."""
    base = root / GENERATIONS
    if not base.is_dir():
        return []
    live = live_generation_dir(root)
    out = []
    for path in sorted(p for p in base.iterdir() if p.is_dir() and is_complete(p)):
        try:
            report = json.loads((path / REPORT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = {}
        if not isinstance(report, dict):
            report = {}
        docs, chunks = report.get("documents"), report.get("chunks")
        out.append(GenerationInfo(path.name, _built_at(path.name, report),
                                  docs if isinstance(docs, int) else None,
                                  chunks if isinstance(chunks, int) else None, path == live,
                                  report))
    return out


def clean_debris(root: Path) -> list[str]:
    """Remove what a killed build left: half-written generations and a half-written pointer.

    Only called under the build lock, so nothing here can belong to a running build.
    """
    removed = []
    base = root / GENERATIONS
    if base.is_dir():
        for path in base.iterdir():
            if path.name.endswith(".tmp"):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    pointer = root / f"{CURRENT}.tmp"
    if pointer.exists():
        pointer.unlink()
        removed.append(pointer.name)
    return removed


def rollback(root: Path, to: str | None = None) -> tuple[str | None, str]:
    """Make an older generation live (default: the newest one older than the live one).

    Returns (previously live, now live). Holds the build lock, so it waits for no build and
    no build can publish over it halfway; raises LockHeld if a build is running.
    """
    with build_lock(root):
        gens = list_generations(root)
        live = next((g.name for g in gens if g.live), None)
        if to is None:
            older = [g.name for g in gens if live is not None and g.name < live]
            if not older:
                raise RollbackError(
                    f"no generation older than the live one ({live or 'none'}) is kept in "
                    f"{root}; `python -m indexer generations --index {root}` lists them")
            target = older[-1]
        else:
            if to not in {g.name for g in gens}:
                raise RollbackError(f"no complete generation named '{to}' in {root / GENERATIONS}"
                                    f"; kept: {', '.join(g.name for g in gens) or 'none'}")
            target = to
        point_current(root, target)
        return live, target
