"""The plans of recent allowed sets, so that a set is mapped to rows once, not once per query.

Keyed by the allowed array's identity: the server caches each partner's allowed set per day as
one read-only array, and this cache holds the array itself, so its id cannot be reused while
the entry lives (a writable array is never cached: its contents could change). Beside a plan it
keeps what reading it needs: a packed copy of a broad scattered set's rows (bounded in bytes by
the store), or the bitmap of an approximate plan's rows (the IVF's selector); an approximate
plan also holds its allowed entries per IVF list (4 bytes a list).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from indexer.store.planner import Plan

PLAN_CACHE = 256  # allowed sets kept mapped to rows (one per partner and day in the server)
SELECTORS = 32  # allowed-row bitmaps kept for the approximate plan (n / 8 bytes each)


def _guide_bytes(chosen: Plan) -> int:
    guide = chosen.approximate.per_list if chosen.approximate is not None else None
    return int(guide.nbytes) if guide is not None else 0


def cacheable(allowed: np.ndarray) -> bool:
    return isinstance(allowed, np.ndarray) and not allowed.flags.writeable


class PlanCache:
    """Least recently planned sets leave first; safe across threads."""

    def __init__(self) -> None:
        self._plans: OrderedDict[int, tuple[np.ndarray, Plan]] = OrderedDict()
        self._packed: OrderedDict[int, np.ndarray] = OrderedDict()  # by the key of _plans
        self._bitmaps: OrderedDict[int, Any] = OrderedDict()  # by the key of _plans
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()
            self._packed.clear()
            self._bitmaps.clear()

    def plan(self, allowed: np.ndarray) -> Plan | None:
        cached = self._plans.get(id(allowed))
        return cached[1] if cached is not None and cached[0] is allowed else None

    def remember(self, allowed: np.ndarray, chosen: Plan) -> None:
        with self._lock:
            self._plans[id(allowed)] = (allowed, chosen)
            while len(self._plans) > PLAN_CACHE:
                old, _ = self._plans.popitem(last=False)
                self._packed.pop(old, None)
                self._bitmaps.pop(old, None)

    def packed(self, allowed: np.ndarray) -> np.ndarray | None:
        key = id(allowed)
        with self._lock:
            found = self._packed.get(key)
            if found is not None:
                self._packed.move_to_end(key)
            return found

    def keep_packed(self, allowed: np.ndarray, copy: np.ndarray, budget: float) -> bool:
        """Keep a packed copy, dropping the oldest until all fit `budget` bytes; False if even
        this one did not stay."""
        key = id(allowed)
        with self._lock:
            self._packed[key] = copy
            while sum(m.nbytes for m in self._packed.values()) > budget:
                self._packed.popitem(last=False)
            return key in self._packed

    def bitmap(self, allowed: np.ndarray, make: Callable[[], Any]) -> Any:
        """The selector of a cached set for the IVF (a bitmap, or a Coverage), made once, or
        made afresh for another."""
        if not cacheable(allowed):
            return make()
        key = id(allowed)
        found = self._bitmaps.get(key)
        if found is None:
            found = make()
            with self._lock:
                self._bitmaps[key] = found
                while len(self._bitmaps) > SELECTORS:
                    self._bitmaps.popitem(last=False)
        return found

    @property
    def packed_bytes(self) -> int:
        return sum(m.nbytes for m in list(self._packed.values()))

    @property
    def nbytes(self) -> int:
        """Row lists, packed copies and bitmaps."""
        return sum(p.rows.nbytes + p.starts.nbytes + p.stops.nbytes + _guide_bytes(p)
                   for _, p in list(self._plans.values())) + self.packed_bytes + \
            sum(getattr(b, "nbytes", 0) or b.bitmap.nbytes for b in list(self._bitmaps.values()))
