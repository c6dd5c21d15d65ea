"""Shipping a generation to a replica's index directory: files first, CURRENT last.

A replica serves what its own INDEX/CURRENT names and swaps a new generation in within
PKS_RELOAD_SECONDS. Shipping keeps that pointer honest on the receiving side: the live
generation's files are copied into `generations/NAME.tmp/` (never read by anyone), each synced,
the directory renamed to `generations/NAME/` and synced, and only then is CURRENT replaced in
one atomic rename, under the receiver's build lock (so it never races a rollback there). A
replica therefore sees the old generation or the whole new one, never half of one; a ship that
dies leaves a `.tmp` directory that the next ship (or build) removes. Keys and the audit beside
the index are not generation files and are never shipped.

For a host without a shared filesystem, rsync does the same in the same order
(docs/REPLICAS.md): the generation directory to `NAME.tmp`, a rename, then CURRENT.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from indexer.store.layout import (
    GENERATIONS,
    StoreError,
    fsync_dir,
    is_complete,
    live_generation_dir,
    point_current,
)
from indexer.store.lock import build_lock
from indexer.store.writer import prune_generations

BLOCK = 16 * 1024 * 1024


@dataclass(frozen=True)
class Shipped:
    generation: str
    copied_bytes: int  # 0 when the receiver already had the whole generation
    was_live: str | None  # what the receiver served before


def _copy(source: Path, target: Path) -> int:
    """One file, synced before it counts as arrived."""
    copied = 0
    with open(source, "rb") as src, open(target, "wb") as out:
        while block := src.read(BLOCK):
            out.write(block)
            copied += len(block)
        out.flush()
        os.fsync(out.fileno())
    return copied


def _copy_tree(source: Path, target: Path) -> int:
    """A generation's files, and a sharded one's shard directories, each synced."""
    copied = 0
    for path in sorted(source.iterdir()):
        if path.is_dir():
            (target / path.name).mkdir()
            copied += _copy_tree(path, target / path.name)
        elif path.is_file():
            copied += _copy(path, target / path.name)
    fsync_dir(target)
    return copied


def ship(source_root: Path, target_root: Path, keep: int) -> Shipped:
    """Make the source's live generation live in `target_root` (created if new); keep the
    receiver's newest `keep` generations, the live one included. Raises StoreError when the
    source has nothing live, LockHeld when the receiver is being built or rolled back."""
    source = live_generation_dir(source_root)
    if source is None or not is_complete(source):
        raise StoreError(f"no published index in {source_root} to ship")
    if source_root.resolve() == target_root.resolve():
        raise StoreError("the source and the target are the same index directory")
    name, generations = source.name, target_root / GENERATIONS
    generations.mkdir(parents=True, exist_ok=True)
    final, staging = generations / name, generations / f"{name}.tmp"
    copied = 0
    with build_lock(target_root):
        before = live_generation_dir(target_root)
        if not is_complete(final):
            shutil.rmtree(staging, ignore_errors=True)  # a ship that died before
            staging.mkdir()
            copied = _copy_tree(source, staging)
            if final.exists():  # an incomplete copy under the final name: never served
                shutil.rmtree(final)
            os.rename(staging, final)
            fsync_dir(generations)
        point_current(target_root, name)
        prune_generations(target_root, keep)
    return Shipped(name, copied, before.name if before is not None else None)
