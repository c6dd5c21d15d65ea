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
# The operators' and owners' views (the audit, builds and rollback, /metrics, an owner's
# receipts) need every surface scope: a person's key, as `keys create` makes by default, never a
# key narrowed to one surface for a bot (docs/ACCESS.md, "Scopes").
EVERY_SURFACE = DEFAULT_SCOPES


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

    def require_any(self, *scopes: str) -> None:
        """Refuse a surface that serves several scopes (MCP's tools) to a key with none."""
        if not self.scopes & set(scopes):
            raise AccessDenied(f"this key has none of the scopes {', '.join(scopes)} (it has: "
                               f"{', '.join(sorted(self.scopes)) or 'none'})")

    def require_every_surface(self) -> None:
        """Refuse the operators' and owners' views to a key narrowed to some surfaces."""
        missing = sorted(EVERY_SURFACE - self.scopes)
        if missing:
            every = ", ".join(sorted(EVERY_SURFACE))
            raise AccessDenied(
                f"this view needs a key with every surface scope ({every}); this key lacks "
                f"{', '.join(missing)}: a key narrowed with --scope reaches only its surfaces")
