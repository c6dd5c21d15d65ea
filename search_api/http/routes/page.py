"""The pages, plain HTML/CSS/JS shipped in search_api/static/: search (/), the owners' receipts
(/owned) and the builds (/builds, for admins).

Each page calls the same public API as any client with the key the person enters (or the SSO
proxy's sign-in); a page holds no rights of its own, so serving one needs no key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from search_api.errors import ApiError

STATIC = Path(__file__).resolve().parents[2] / "static"
FILES = {"page.css", "page.js", "session.js", "chart.js", "owned.js", "builds.js"}
# Everything from this origin only: nothing from a CDN, no inline script.
POLICY = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
          "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, headers={
        "Content-Security-Policy": POLICY, "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


@router.get("/")
def page() -> FileResponse:
    return _page("index.html")


@router.get("/owned")
def owned_page() -> FileResponse:
    """Your documents: who received them, when (GET /v1/audit/owned or /v1/admin/audit/owned)."""
    return _page("owned.html")


@router.get("/builds")
def builds_page() -> FileResponse:
    """Builds: generations, reports, runs and the rollback (/v1/admin/builds)."""
    return _page("builds.html")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in FILES:  # a fixed list: no path from the request reaches the file system
        raise ApiError(404, "not_found", "Not Found")
    return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache",
                                                "X-Content-Type-Options": "nosniff"})
