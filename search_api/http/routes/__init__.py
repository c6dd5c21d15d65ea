"""HTTP routes, one small router per surface (search, retrieve, documents, page, docs, audit,
ops, mcp).

Each module exposes `router`; app.py only includes them. Routes stay thin: they take the
principal and allowed set from deps.py and call the module that owns the work.
"""

from __future__ import annotations

from typing import Any

from search_api.http.schemas import ErrorResponse
from search_api.identity.principal import DOCUMENTS, EVERY_SURFACE, RETRIEVE, SEARCH

# Which keys get past authorization on each route: for a partner key and for an admin key, the
# sets of scopes of which the key must hold every scope of one (docs/ACCESS.md, "Scopes", is
# this table in words; tests/search_api/http/test_route_scopes.py walks every route with a key of
# each single scope). Act-as is never needed to reach a route: it only lets a request carry
# `on_behalf_of`. The pages and probes (PUBLIC) need no key at all.
Need = tuple[frozenset[str], ...]
NEVER: Need = ()
ANY_KEY: Need = (frozenset(),)
EVERY: Need = (EVERY_SURFACE,)


def needs(*scopes: str) -> Need:
    """One of these scopes suffices."""
    return tuple(frozenset({scope}) for scope in scopes)


ROUTE_SCOPES: dict[str, tuple[Need, Need]] = {  # route: (partner key, admin key)
    "POST /v1/search": (needs(SEARCH), needs(SEARCH)),
    "POST /v1/retrieve": (needs(RETRIEVE), needs(RETRIEVE)),
    "GET /v1/documents/{doc_id}": (needs(DOCUMENTS), needs(DOCUMENTS)),
    "GET /mcp": (needs(RETRIEVE, DOCUMENTS), needs(RETRIEVE, DOCUMENTS)),
    "POST /mcp": (needs(RETRIEVE, DOCUMENTS), needs(RETRIEVE, DOCUMENTS)),
    "DELETE /mcp": (needs(RETRIEVE, DOCUMENTS), needs(RETRIEVE, DOCUMENTS)),
    "GET /v1/me": (ANY_KEY, ANY_KEY),
    "GET /v1/audit/owned": (EVERY, NEVER),  # admins read every owner's at the next route
    "GET /v1/admin/audit/owned": (NEVER, EVERY),
    "GET /v1/admin/audit": (NEVER, EVERY),
    "GET /v1/admin/builds": (NEVER, EVERY),
    "POST /v1/admin/builds/rollback": (NEVER, EVERY),
    "GET /metrics": (NEVER, EVERY),  # or the scrape token (PKS_METRICS_TOKEN)
}
PUBLIC = frozenset({"GET /healthz", "GET /readyz", "GET /", "GET /owned", "GET /builds",
                    "GET /static/{name}", "GET /docs", "GET /docs/assets/{name}",
                    "GET /openapi.json"})


def passes(need: Need, scopes: frozenset[str]) -> bool:
    """Whether a key holding `scopes` gets past authorization where `need` applies."""
    return any(option <= scopes for option in need)

ERRORS = {401: "Missing, unknown or revoked key",
          403: "The key lacks the scope this needs (act-as, for on_behalf_of; see "
               "docs/ACCESS.md, Scopes)",
          404: "Not found (or not visible to this key)",
          410: "No longer available as indexed",
          413: "Request body over PKS_MAX_BODY_BYTES",
          422: "Invalid request",
          429: "Too many requests by this key or user, or refused sign-ins from this address; "
               "see the Retry-After header",
          503: "The audit cannot record this request, so it is not answered, or the shared key "
               "store (PostgreSQL) cannot be read; retry later (see the Retry-After header)"}


def error_responses(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all in the one error shape.
    A route whose refusal means something else names it: `error_responses(401, e403="...")`."""
    text = {**ERRORS, **{int(name[1:]): what for name, what in described.items()}}
    return {code: {"model": ErrorResponse, "description": text[code]}
            for code in (*codes, *(int(name[1:]) for name in described))}
