"""HTTP routes, one small router per surface (search, documents, page, docs, ops).

Each module exposes `router`; app.py only includes them. Routes stay thin: they take the
principal and allowed set from deps.py and call the module that owns the work.
"""

from __future__ import annotations

from typing import Any

from search_api.schemas import ErrorResponse


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer, all in the one error shape."""
    text = {401: "Missing, unknown or revoked key",
            403: "The key lacks the scope this needs (act-as, for on_behalf_of)",
            404: "Not found (or not visible to this key)",
            410: "No longer available as indexed", 422: "Invalid request"}
    return {code: {"model": ErrorResponse, "description": text.get(code, "Error")}
            for code in codes}
