"""The console's own static files, served by mediation (stations often run on closed networks: no
CDN). htmx comes from npm with the lockfile (`make install` runs `npm ci`; the image copies it in
its own build stage); our stylesheet and keyboard shortcuts live beside this module.

Only the files named here are served: a path is never joined from the request."""

from __future__ import annotations

import os
from pathlib import Path

import structlog
from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """npm's node_modules: `FENGQIAO_ASSETS_DIR`, else the checkout's (services/mediation/mediation/
    is three levels below the repository root)."""
    configured = os.environ.get("FENGQIAO_ASSETS_DIR")
    return Path(configured) if configured else HERE.parents[2] / "node_modules"


def _files() -> dict[str, tuple[Path, str]]:
    npm = assets_dir()
    return {
        "htmx.min.js": (npm / "htmx.org" / "dist" / "htmx.min.js", "text/javascript"),
        "console.js": (HERE / "static" / "console.js", "text/javascript"),
        "console.css": (HERE / "static" / "console.css", "text/css"),
    }


def missing_assets() -> list[str]:
    """Files the console expects and cannot find (the pages work without them, only less smoothly)."""
    return [name for name, (path, _) in _files().items() if not path.is_file()]


@router.get("/console/static/{name}")
async def static_file(name: str) -> Response:
    found = _files().get(name)
    if found is None or not found[0].is_file():
        return Response(status_code=404)
    path, media_type = found
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
