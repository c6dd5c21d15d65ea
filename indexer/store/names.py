"""The names a generation stores and the rules they follow: partner ids and path globs.

One definition for everything that reads or checks them: the access manifest (build time), the
users table and the `within` folder filter (query time). Path globs use wcmatch's gitignore-like
`**` with these flags everywhere, so a glob means the same thing in access.yaml and in a query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from wcmatch import glob

PARTNER_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
GLOB_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.CASE


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a usable path glob relative to the corpus root, or None."""
    if not pattern.strip():
        return "is empty"
    if any(ord(c) < 32 for c in pattern):
        return "contains a control character"
    if pattern.startswith("/") or ".." in pattern.split("/"):
        return "must be relative to the corpus root, without a leading '/' or '..'"
    try:
        glob.translate(pattern, flags=GLOB_FLAGS)
    except Exception as exc:  # wcmatch raises plain ValueErrors for bad patterns
        return f"is not a valid glob: {exc}"
    return None


def path_matches(path: str, pattern: str) -> bool:
    return bool(glob.globmatch(path, pattern, flags=GLOB_FLAGS))


def path_matcher(patterns: Sequence[str]) -> Any:
    """Several globs compiled once; `.match(path)` is true when any of them matches."""
    return glob.compile(list(patterns), flags=GLOB_FLAGS)
