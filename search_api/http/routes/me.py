"""GET /v1/me: who the caller is, so a page shows the links that fit it (an owner's receipts,
the admins' views). Only the caller's own facts: nothing about other partners or keys."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from search_api.http.deps import CurrentIndex, CurrentPrincipal
from search_api.http.routes import error_responses

router = APIRouter(tags=["keys"])


class Me(BaseModel):
    partner: str | None = Field(description="The key's partner; null for admin keys.")
    admin: bool
    scopes: list[str] = Field(description="What the key may do (docs/ACCESS.md, Scopes).")
    owned_documents: int = Field(description="Documents the partner owns in the live "
                                             "generation (access.yaml `owner`); 0 for admins.")


@router.get("/v1/me", response_model=Me, responses=error_responses(401))
def me(principal: CurrentPrincipal, index: CurrentIndex) -> Me:
    """The calling key (or signed-in user): its partner, whether it is an admin, its scopes,
    and how many documents its partner owns."""
    owned = 0 if principal.partner is None else \
        index.generation.owner_counts().get(principal.partner, 0)
    return Me(partner=principal.partner, admin=principal.admin,
              scopes=sorted(principal.scopes), owned_documents=owned)
