"""What a request did, counted: the evidence that its work depends only on what it may see.

A term that occurs only in documents the caller may not see must cost what a term that occurs
nowhere costs (docs/ACCESS.md, "Work"). Timing shows that only statistically
(benchmarks/timing_channel.py); these counts show it exactly: the tests count the work of a
hidden-only and an absent term and assert the counts are equal. Off unless a test turns it on
(`counting()`), when every tally adds to one `Work`: a module attribute, not a context variable,
because a request runs on the app's threads, not the test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields


@dataclass
class Work:
    """Counts of the steps whose cost could depend on the data."""

    terms: int = 0      # tokens looked up in a vocabulary
    probes: int = 0     # (access group, term) keys looked up
    lists: int = 0      # (access group, term) postings lists found and used
    postings: int = 0   # postings read (gathered for scoring, or searched for a partial group)
    paths: int = 0      # document paths matched against `within` globs

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_active: Work | None = None


@contextmanager
def counting() -> Iterator[Work]:
    """Count the work of everything run until the block ends (tests only: one at a time)."""
    global _active
    _active = work = Work()
    try:
        yield work
    finally:
        _active = None


def tally(**steps: int) -> None:
    """Add to the counts, when someone is counting (a global read otherwise)."""
    work = _active
    if work is not None:
        for name, n in steps.items():
            setattr(work, name, getattr(work, name) + n)
