"""Every error, translated in one place into one JSON shape: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from search_api.audit.trail import AuditUnavailable
from search_api.errors import ApiError
from search_api.http.request_id import request_id
from search_api.identity.principal import AccessDenied

log = logging.getLogger(__name__)


UNREADABLE_BODY = "There was an error parsing the body"  # FastAPI's 400 for an undecodable body


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    # A message may quote the request (a field name, a glob); what UTF-8 cannot encode (a lone
    # surrogate) is shown as its escape, so that an error can always be sent.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def _field(loc: tuple[object, ...]) -> str:
    """'body.top_k' -> 'top_k': the first element only says where the value came from."""
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") \
        else [str(p) for p in loc]
    return ".".join(parts) or "body"


def _validation_message(exc: RequestValidationError) -> str:
    """One readable sentence per problem, e.g. 'top_k: must be at most 100 (got 500)'."""
    messages = []
    for err in exc.errors():
        kind, ctx, loc = err.get("type", ""), err.get("ctx") or {}, tuple(err.get("loc", ()))
        if kind == "json_invalid":
            messages.append(f"the body is not valid JSON ({ctx.get('error', 'parse error')})")
            continue
        field = _field(loc)
        if field == "body" and kind in ("model_attributes_type", "dict_type", "model_type"):
            messages.append("the body must be a JSON object such as {\"query\": \"...\", "
                            "\"top_k\": 10}, sent with Content-Type: application/json")
            continue
        if kind == "missing":
            text = "is required" if field != "body" else "a JSON body is required"
        elif kind == "extra_forbidden":
            text = "is not a known field (the fields are listed at /docs)"
        elif kind in ("greater_than_equal", "less_than_equal"):
            bound = "at least" if kind == "greater_than_equal" else "at most"
            limit = ctx.get("ge", ctx.get("le"))
            text = f"must be {bound} {limit} (got {err.get('input')!r})"
        elif kind == "value_error":
            text = str(ctx.get("error", err.get("msg", "")))
        else:
            text = err.get("msg", "is invalid")
        messages.append(f"{field}: {text}" if field != "body" else text)
    return "; ".join(messages) or "invalid request"


def _server_side(request: Request, exc: Exception, message: str) -> str:
    """A server-side failure: its details (which database, host or file, and why) go to the
    log under the request's id; the caller gets the message and the id, nothing of the
    infrastructure."""
    rid = request_id(request.scope)
    cause = exc.__cause__ or exc.__context__
    log.error("request %s %s %s failed: %s%s", rid, request.method, request.url.path, exc,
              f" (cause: {cause!r})" if cause else "", exc_info=cause)
    return f"{message} (request id {rid}: the server log has the details)"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        message = _server_side(request, exc, exc.message) if exc.status >= 500 else exc.message
        return error_response(exc.status, exc.code, message, exc.headers)

    @app.exception_handler(AccessDenied)
    async def _forbidden(_: Request, exc: AccessDenied) -> JSONResponse:
        return error_response(403, "forbidden", str(exc))

    @app.exception_handler(AuditUnavailable)
    async def _unaudited(request: Request, exc: AuditUnavailable) -> JSONResponse:
        return error_response(503, "audit_unavailable", _server_side(request, exc, str(exc)),
                              {"Retry-After": "30"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNREADABLE_BODY:  # e.g. bytes that are not
            return error_response(422, "invalid_request",  # UTF-8: the documented 422
                                  "the body is not valid JSON text (send UTF-8 encoded JSON)")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id(request.scope)
        log.error("request %s %s %s: unhandled error", rid, request.method, request.url.path,
                  exc_info=exc)
        return error_response(
            500, "internal_error",
            f"internal error (request id {rid}: the server log has the details)")
