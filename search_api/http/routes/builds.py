"""The builds for admins: the kept generations with their reports, the recorded runs, and the
rollback (the Builds page calls these). The work is in search_api/ops/builds.py."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from search_api.http.deps import AdminPrincipal, AppServices, Audit, CurrentIndex
from search_api.http.routes import error_responses
from search_api.ops.builds import Builds, RolledBack, builds, roll_back

router = APIRouter(tags=["builds"])
ADMIN_ONLY = error_responses(401, e403="Not an admin key")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(None, description="A generation name (GET /v1/admin/builds); "
                                             "default: the newest one older than the live one.",
                           max_length=200)


@router.get("/v1/admin/builds", response_model=Builds, responses=ADMIN_ONLY)
def list_builds(_: AdminPrincipal, services: AppServices, index: CurrentIndex) -> Builds:
    """The kept generations, newest first, each with its build report (when, how long,
    documents added / changed / deleted / skipped / kept with reasons, chunks embedded vs
    reused) and whether it is live; and the recorded build runs, failed ones included."""
    return builds(services.settings.index, index.generation.name)


@router.post("/v1/admin/builds/rollback", response_model=RolledBack, responses={
    **ADMIN_ONLY, **error_responses(422, e409="A build is running, or no such generation")})
def rollback(principal: AdminPrincipal, services: AppServices, audit: Audit,
             body: RollbackRequest) -> RolledBack:
    """Make another kept generation live, as `python -m indexer rollback [--to NAME]` does and
    under the same build lock; this server serves it at once. Recorded in the audit."""
    return roll_back(services.settings.index, services.holder, audit, principal, body.to)
