"""/docs (Swagger UI) from files installed with the package, never from a CDN: an intranet may
have no internet. The files come from fastapi-offline's wheel. /redoc is off: ReDoc fetches its
logo from the internet."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from search_api.errors import ApiError

ASSETS = Path(fastapi_offline.__file__).parent / "static"
FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}
PREFIX = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} - API",
        swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{root}{PREFIX}/favicon.png")


@router.get(PREFIX + "/{name}")
def asset(name: str) -> FileResponse:
    if name not in FILES:  # a fixed list: no path from the request reaches the file system
        raise ApiError(404, "not_found", "Not Found")
    return FileResponse(ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
