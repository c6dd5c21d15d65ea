"""Request dependencies: the principal is resolved once, then its allowed set, from one snapshot.

Dependencies that only read memory are `async def`: FastAPI runs them on the event loop, where
each sync one would cost a hop through the thread pool (measured: the search route's six hops
were a sizeable share of a request's CPU at 8 concurrent clients). Those that touch SQLite or
compute (the key lookup, an allowed set) stay sync, off the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from search_api.access.allowed import AllowedSet
from search_api.audit.trail import Audit as AuditTrail
from search_api.errors import Forbidden, Unauthorized, Unavailable
from search_api.identity.bearer import bearer_token
from search_api.identity.keys import Keys, KeyStoreUnavailable
from search_api.identity.principal import DOCUMENTS, RETRIEVE, SEARCH, Principal
from search_api.retrieval.live import LoadedIndex
from search_api.settings import ApiSettings
from search_api.state.services import Services

# Declares the scheme in the OpenAPI document; the key itself is read by bearer.bearer_token.
bearer = HTTPBearer(auto_error=False,
                    description="An API key from `python -m search_api keys create`")


async def get_services(request: Request) -> Services:
    return request.app.state.services


AppServices = Annotated[Services, Depends(get_services)]


async def get_settings(services: AppServices) -> ApiSettings:
    return services.settings


AppSettings = Annotated[ApiSettings, Depends(get_settings)]


async def current_index(services: AppServices) -> LoadedIndex:
    return services.holder.get()


CurrentIndex = Annotated[LoadedIndex, Depends(current_index)]


def principal_for(keys: Keys, token: str | None) -> Principal:
    """The one way a presented key becomes a principal: HTTP routes and MCP tools alike.
    A key store that cannot be read fails closed (503), never as 'unknown key'."""
    if not token or not token.strip():
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    try:
        principal = keys.authenticate(token.strip())
    except KeyStoreUnavailable as exc:  # which store, and why: the server log (errors.py)
        raise Unavailable("keys cannot be checked right now; try again shortly") from exc
    if principal is None:
        raise Unauthorized("unknown or revoked API key")
    return principal


def signed_in(services: Services, token: str | None, address: str | None) -> Principal:
    """A presented key as a principal, charged one request of its budget; a refused key is
    charged to the client's address instead (limits.py). HTTP routes and /mcp alike."""
    try:
        principal = principal_for(services.keys, token)
    except Unauthorized as exc:
        raise services.limits.refusal(address, exc) from None
    services.limits.charge(principal)
    return principal


def resolve_principal(
    request: Request,
    services: AppServices,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The SSO proxy's user (only when enabled and from a trusted proxy), else the API key;
    resolved once per request, and the request charged to it."""
    address = request.client.host if request.client else None
    user = services.sso.user_of(request)
    if user is None:
        return signed_in(services, bearer_token(request.headers.get("authorization")), address)
    principal = services.sso.principal_for(user)
    if principal is None:
        raise services.limits.refusal(address, Unauthorized(
            f"user '{user}' is signed in but not in the users table; ask an administrator to "
            "add you to a partner"))
    services.limits.charge(principal)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(resolve_principal)]


def scoped(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only principals holding `scope` (403 otherwise)."""

    async def require(principal: CurrentPrincipal) -> Principal:
        principal.require(scope)
        return principal

    return require


async def every_surface(principal: CurrentPrincipal) -> Principal:
    principal.require_every_surface()
    return principal


# One per surface: a route names the scope it needs by its caller type (the table of every
# route: search_api/http/routes/__init__.py, ROUTE_SCOPES).
SearchCaller = Annotated[Principal, Depends(scoped(SEARCH))]
RetrieveCaller = Annotated[Principal, Depends(scoped(RETRIEVE))]
DocumentsCaller = Annotated[Principal, Depends(scoped(DOCUMENTS))]
OwnerCaller = Annotated[Principal, Depends(every_surface)]  # an owner's receipts


def allowed_set(principal: CurrentPrincipal, index: CurrentIndex,
                services: AppServices) -> AllowedSet:
    return index.access.allowed_for(principal, services.today())


Allowed = Annotated[AllowedSet, Depends(allowed_set)]


def require_admin(principal: Principal) -> Principal:
    """Admin-only routes (the full audit, builds, metrics): a partner key gets 403, never a
    partial answer, and so does an admin key narrowed to some surfaces (a chat bot's)."""
    if not principal.admin:
        raise Forbidden("this needs an admin key (`keys create --admin`)")
    principal.require_every_surface()
    return principal


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    return require_admin(principal)


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]


async def get_audit(services: AppServices) -> AuditTrail:
    return services.audit


# The one audit log: every surface calls `audit.record(principal, surface, ...)` once.
Audit = Annotated[AuditTrail, Depends(get_audit)]
