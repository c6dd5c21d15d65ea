"""GET /: the intranet search page, plain HTML/CSS/JS shipped in search_api/static/.

The page calls the same public API as any client (POST /v1/search, GET /v1/documents/...);
it holds no rights of its own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from search_api.errors import ApiError

STATIC = Path(__file__).resolve().parents[1] / "static"
FILES = {"page.css", "page.js"}
# Everything from this origin only: nothing from a CDN, no inline script.
POLICY = ("default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
          "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={
        "Content-Security-Policy": POLICY, "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in FILES:  # a fixed list: no path from the request reaches the file system
        raise ApiError(404, "not_found", "Not Found")
    return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache",
                                                "X-Content-Type-Options": "nosniff"})
