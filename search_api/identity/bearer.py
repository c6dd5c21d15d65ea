"""The one reading of `Authorization: Bearer <key>`: for routes, MCP, /metrics and the limits."""

from __future__ import annotations


def bearer_token(authorization: str | None) -> str | None:
    """The key a request presents, or None (no header, another scheme, or nothing after it)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
