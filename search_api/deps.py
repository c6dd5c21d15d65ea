"""Request dependencies: the principal is resolved once, then its allowed set, from one snapshot.

Dependencies that only read memory are `async def`: FastAPI runs them on the event loop, where
each sync one would cost a hop through the thread pool (measured: the search route's six hops
were a sizeable share of a request's CPU at 8 concurrent clients). Those that touch SQLite or
compute (the key lookup, an allowed set) stay sync, off the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from search_api.access import DOCUMENTS, RETRIEVE, SEARCH, AllowedSet, Principal
from search_api.audit import AuditLog
from search_api.errors import Forbidden, Unauthorized
from search_api.keys import KeyStore
from search_api.live import IndexHolder, LoadedIndex
from search_api.settings import ApiSettings
from search_api.sso import SsoGate

bearer = HTTPBearer(auto_error=False,
                    description="An API key from `python -m search_api keys create`")


def utc_today() -> date:
    return datetime.now(UTC).date()


class AppState:
    """Everything a request needs, created once in the app's lifespan."""

    def __init__(self, holder: IndexHolder, keys: KeyStore,
                 today: Callable[[], date] = utc_today) -> None:
        self.holder, self.keys, self.today = holder, keys, today


async def get_state(request: Request) -> AppState:
    return request.app.state.pks


State = Annotated[AppState, Depends(get_state)]


async def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


AppSettings = Annotated[ApiSettings, Depends(get_settings)]


async def current_index(state: State) -> LoadedIndex:
    return state.holder.get()


CurrentIndex = Annotated[LoadedIndex, Depends(current_index)]


def principal_for(keys: KeyStore, token: str | None) -> Principal:
    """The one way a presented key becomes a principal: HTTP routes and MCP tools alike."""
    if not token or not token.strip():
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    principal = keys.authenticate(token.strip())
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


def resolve_principal(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The SSO proxy's user (only when enabled and from a trusted proxy), else the API key."""
    gate: SsoGate = request.app.state.sso
    user = gate.user_of(request)
    if user is not None:
        signed_in = gate.principal_for(user)
        if signed_in is None:
            raise Unauthorized(f"user '{user}' is signed in but not in the users table; ask an "
                               "administrator to add you to a partner")
        return signed_in
    return principal_for(state.keys, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(resolve_principal)]


def scoped(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only principals holding `scope` (403 otherwise)."""

    async def require(principal: CurrentPrincipal) -> Principal:
        principal.require(scope)
        return principal

    return require


# One per surface: a route names the scope it needs by its caller type.
SearchCaller = Annotated[Principal, Depends(scoped(SEARCH))]
RetrieveCaller = Annotated[Principal, Depends(scoped(RETRIEVE))]
DocumentsCaller = Annotated[Principal, Depends(scoped(DOCUMENTS))]


def allowed_set(principal: CurrentPrincipal, index: CurrentIndex, state: State) -> AllowedSet:
    return index.access.allowed_for(principal, state.today())


Allowed = Annotated[AllowedSet, Depends(allowed_set)]


def require_admin(principal: Principal) -> Principal:
    """Admin-only routes (the full audit): a partner key gets 403, never a partial answer."""
    if not principal.admin:
        raise Forbidden("this needs an admin key (`keys create --admin`)")
    return principal


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    return require_admin(principal)


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


async def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


# The one audit log: every surface calls `audit.record(principal, surface, ...)` once.
Audit = Annotated[AuditLog, Depends(get_audit)]
