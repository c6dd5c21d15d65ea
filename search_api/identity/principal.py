"""The principal: who is asking, and the scopes (surfaces) its key or user was given.

Resolved once per request (search_api/http/deps.py) from an API key (identity/keys.py) or a
signed-in user (identity/sso.py); what it may see is the allowed set's business
(search_api/access/allowed.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# What a key may do (docs/ACCESS.md, "Scopes"): one scope per surface, plus act-as.
SEARCH, RETRIEVE, DOCUMENTS, ACT_AS = "search", "retrieve", "documents", "act-as"
SCOPES = (SEARCH, RETRIEVE, DOCUMENTS, ACT_AS)
DEFAULT_SCOPES = frozenset({SEARCH, RETRIEVE, DOCUMENTS})  # act-as is opt-in only


class AccessDenied(Exception):
    """The key may not do this (403). Says which scope is missing, never what exists."""


@dataclass(frozen=True)
class Principal:
    key_id: str
    partner: str | None  # None only for admin keys, never as a wildcard
    admin: bool
    scopes: frozenset[str] = DEFAULT_SCOPES

    def require(self, scope: str) -> None:
        """Refuse a surface (or act-as) the key was not given."""
        if scope not in self.scopes:
            raise AccessDenied(
                f"this key lacks the scope '{scope}' (it has: {', '.join(sorted(self.scopes))}); "
                f"create a key with `keys create ... --scope {scope}`")
