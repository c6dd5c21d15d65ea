"""/mcp: the MCP server over streamable HTTP, mounted on the API with the API's own keys.

A request without a valid key is refused with 401 (the API's error shape) before MCP sees it,
and every request is charged to its key's rate limit as a route's is; each tool call then
resolves the key from its own request again, through the same function as every route
(deps.principal_for), so a revoked key stops at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from search_api.errors import ApiError
from search_api.http.deps import signed_in
from search_api.http.error_handlers import error_response
from search_api.http.mcp_server import build_server
from search_api.identity.bearer import bearer_token

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
            signed_in(app.state.services, bearer_token(authorization),
                      client[0] if client else None)
        except ApiError as exc:
            await error_response(exc.status, exc.code, exc.message, exc.headers)(
                scope, receive, send)
            return
        await app.state.mcp.handle_request(scope, receive, send)


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
