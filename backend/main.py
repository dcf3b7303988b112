"""The FastAPI application: the API under /api/v1 and the built UI at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from backend.routers import auth, datasets, health, jobs, methods
from backend.settings import get_settings

API_PREFIX = "/api/v1"

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""On every response: no MIME sniffing, no framing (clickjacking), no referrer leaks."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The UI's and the API's policy: only this origin's scripts (the built UI has no inline ones).
The interactive docs load Swagger UI from a CDN, so they only get `frame-ancestors 'none'`."""

_DOCS_PATHS = ("/docs", "/redoc")


def _operation_id(route: APIRoute) -> str:
    # tag + function name, so the generated TypeScript client reads well (datasets-upload_dataset).
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The reaper runs beside the API: jobs whose workers died are re-dispatched."""
    from backend.services.reaper import Reaper

    reaper = Reaper()
    reaper.start()
    try:
        yield
    finally:
        reaper.stop()


def create_app() -> FastAPI:
    settings = get_settings()
    settings.check_production()
    app = FastAPI(
        lifespan=_lifespan,
        title="prefaudit",
        summary="Audit preference datasets with influence functions; prune the pairs that hurt.",
        version="0.1.0",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        generate_unique_id_function=_operation_id,
    )
    api = APIRouter(prefix=API_PREFIX)
    for module in (health, auth, datasets, jobs, methods):
        api.include_router(module.router)
    app.include_router(api)
    _mount_frontend(app, settings.frontend_dir)

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        docs = request.url.path.startswith(_DOCS_PATHS)
        policy = "frame-ancestors 'none'" if docs else CONTENT_SECURITY_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        return response

    return app


def _mount_frontend(app: FastAPI, dist: Path) -> None:
    """Serve the built UI with an SPA fallback; without a build, / explains how to make one."""
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")

    @app.get("/{path:path}", include_in_schema=False, response_model=None)
    def spa(path: str) -> FileResponse | JSONResponse:
        if path.startswith("api/"):
            return JSONResponse({"detail": f"no API route /{path}"}, status_code=404)
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and dist.resolve() in candidate.parents:
            return FileResponse(candidate)
        if index.is_file():
            return FileResponse(index)
        return JSONResponse(
            {
                "detail": f"the UI is not built ({index} missing): run `make frontend`; "
                "the API is at /api/v1 and its docs at /docs"
            },
            status_code=404,
        )


app = create_app()
