"""/mcp: the MCP server over streamable HTTP, mounted on the API with the API's own keys.

A request without a valid key is refused with 401 (the API's error shape) before MCP sees it,
and every request is charged to its key's rate limit as a route's is; each tool call then
resolves the key from its own request again, through the same function as every route
(deps.principal_for), so a revoked key stops at once.

A GET opens an event stream, which holds its connection until the client lets go: each key may
hold PKS_STREAMS_PER_KEY of them (64) and the process PKS_STREAMS_PER_SERVER (256), the next is
429 (access/budgets.py), and a stream that sent nothing but keep-alive pings for
PKS_STREAM_IDLE_SECONDS (60) is closed (a stateless server never sends anything else on it; a
client opens another when it wants one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search_api.errors import ApiError
from search_api.http.deps import signed_in
from search_api.http.error_handlers import error_response
from search_api.http.mcp_server import build_server
from search_api.identity.bearer import bearer_token
from search_api.identity.principal import DOCUMENTS, RETRIEVE, AccessDenied

PATH = "/mcp"


def _request_token(ctx: Context) -> str | None:
    headers = ctx.headers or {}
    return bearer_token(headers.get("authorization"))


class McpEndpoint:
    """ASGI endpoint: authenticate, then hand over to the session manager of the lifespan."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        client = scope.get("client")
        try:  # authenticated and charged once per HTTP request, as every route is
            principal = signed_in(app.state.services, bearer_token(authorization),
                                  client[0] if client else None)
            principal.require_any(RETRIEVE, DOCUMENTS)  # a key no tool would serve
        except AccessDenied as exc:
            await error_response(403, "forbidden", str(exc))(scope, receive, send)
            return
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(
                scope, receive, send)
            return
        if scope["method"] != "GET":
            await app.state.mcp.handle_request(scope, receive, send)
            return
        services = app.state.services
        try:
            services.streams.open(principal.key_id)
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(
                scope, receive, send)
            return
        try:
            await until_idle(app.state.mcp.handle_request, scope, receive, send,
                             services.settings.stream_idle_seconds)
        finally:
            services.streams.close(principal.key_id)


async def until_idle(handle: ASGIApp, scope: Scope, receive: Receive, send: Send,
                     idle: float) -> None:
    """Run a streaming response until it has sent nothing but SSE comments (keep-alive pings,
    lines starting with ':') for `idle` seconds; then end it cleanly."""
    last = anyio.current_time()
    started = ended = False

    async def watched(message: Message) -> None:
        nonlocal last, started, ended
        if message["type"] == "http.response.start":
            started = True
        elif message["type"] == "http.response.body":
            ended = not message.get("more_body", False)
            if message.get("body", b"").strip() and not message["body"].lstrip().startswith(b":"):
                last = anyio.current_time()
        await send(message)

    async with anyio.create_task_group() as group:
        async def watchdog() -> None:
            while (wait := last + idle - anyio.current_time()) > 0:
                await anyio.sleep(wait)
            group.cancel_scope.cancel()

        group.start_soon(watchdog)
        await handle(scope, receive, watched)
        group.cancel_scope.cancel()
    if started and not ended:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


route = Route(PATH, McpEndpoint(), methods=["GET", "POST", "DELETE"])


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[None]:
    """Run the MCP session manager for the app's lifetime (a fresh one per lifespan).

    Stateless: every request stands alone with its own key, so no session outlives a revoked
    key or can be borrowed by another. DNS-rebinding protection is off because every request
    must carry a bearer key, which a rebinding page cannot supply; it would only refuse the
    host names of a reverse proxy.
    """
    server = build_server(lambda: app.state.services, _request_token)
    server.streamable_http_app(
        stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    async with server.session_manager.run():
        app.state.mcp = server.session_manager
        yield
