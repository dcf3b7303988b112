"""The interactive API docs, served by this server: Swagger UI at /docs and ReDoc at /redoc.

Their scripts and styles come from the `fastapi-offline` package (Swagger UI 5 and ReDoc 2,
shipped inside the wheel) and their start-up code from `backend/static/docs/`, so no request
leaves the server's origin (an air-gapped install has working docs) and the pages run under the
app's own Content-Security-Policy: no inline script, no third-party host.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
"""swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and favicon.png."""
OWN_DIR = Path(__file__).resolve().parent / "static" / "docs"
"""swagger-init.js and redoc-init.js: what FastAPI's pages do in an inline script."""

VENDOR_URL = "/docs/vendor"
OWN_URL = "/docs/app"


def _page(title: str, body: str, head: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/png" href="{VENDOR_URL}/favicon.png">
{head}
</head>
<body>
{body}
</body>
</html>
"""


def swagger_html(title: str, openapi_url: str) -> str:
    return _page(
        f"{title} – Swagger UI",
        f'<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>\n'
        f'<script src="{VENDOR_URL}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{OWN_URL}/swagger-init.js"></script>',
        head=f'<link rel="stylesheet" href="{VENDOR_URL}/swagger-ui.css">',
    )


def redoc_html(title: str, openapi_url: str) -> str:
    return _page(
        f"{title} – ReDoc",
        f'<div id="redoc" data-openapi-url="{escape(openapi_url)}"></div>\n'
        f'<script src="{VENDOR_URL}/redoc.standalone.js"></script>\n'
        f'<script src="{OWN_URL}/redoc-init.js"></script>',
        head="<style>body { margin: 0; padding: 0; }</style>",
    )


def mount_docs(app: FastAPI, openapi_url: str) -> None:
    """Add /docs, /redoc and their assets to `app` (created with docs_url=redoc_url=None)."""
    for folder, name in ((VENDOR_DIR, "swagger-ui-bundle.js"), (OWN_DIR, "swagger-init.js")):
        if not (folder / name).is_file():
            raise RuntimeError(f"the API docs' assets are missing: {folder / name}")
    app.mount(VENDOR_URL, StaticFiles(directory=VENDOR_DIR), name="docs-vendor")
    app.mount(OWN_URL, StaticFiles(directory=OWN_DIR), name="docs-app")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger_html(app.title, openapi_url))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(redoc_html(app.title, openapi_url))
