"""HTTP routes, one small router per surface (search, retrieve, documents, page, docs, audit,
ops, mcp).

Each module exposes `router`; app.py only includes them. Routes stay thin: they take the
principal and allowed set from deps.py and call the module that owns the work.
"""

from __future__ import annotations

from typing import Any

from search_api.http.schemas import ErrorResponse

ERRORS = {401: "Missing, unknown or revoked key",
          403: "The key lacks the scope this needs (act-as, for on_behalf_of)",
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
