"""Every response names its request (`X-Request-Id`): what a caller quotes when it reports an
error, and what the server log says beside the details a caller is never shown (which database,
which host, which file: error_handlers.py)."""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"


def request_id(scope: Scope) -> str:
    """This request's id (one is made if the middleware did not run, as in a bare ASGI call)."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex[:16]
    return str(state["request_id"])


class RequestId:
    """Pure ASGI middleware: an id per HTTP request, sent back as a response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope).encode("ascii")

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER.encode(), rid)]
            await send(message)

        await self.app(scope, receive, with_id)
