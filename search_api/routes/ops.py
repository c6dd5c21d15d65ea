"""Operations: liveness (no key needed, no figures that depend on the caller)."""

from __future__ import annotations

from fastapi import APIRouter

from search_api.deps import CurrentIndex

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz(index: CurrentIndex) -> dict[str, str]:
    """Liveness, and which generation is served (operators check a re-index went live)."""
    return {"status": "ok", "generation": index.generation.name}
