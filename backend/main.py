"""The FastAPI application: the API under /api/v1 and the built UI at /."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError

from backend.db import session_scope
from backend.deps import (
    UNAUTHORIZED_DETAIL,
    get_caller,
    get_current_user,
    presented_token,
    token_is_live,
    token_row,
)
from backend.docs import mount_docs
from backend.errors import (
    BadInput,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Throttled,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from backend.limits import BodyLimit
from backend.routers import (
    auth,
    datasets,
    export,
    health,
    jobs,
    judge,
    methods,
    pairs,
    review,
    secrets,
    teams,
)
from backend.routers import targets as target_sets
from backend.services.ingest import clean_staged
from backend.services.reaper import Reaper
from backend.settings import get_settings
from backend.timing import ServerTiming

API_PREFIX = "/api/v1"

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""On every response: no MIME sniffing, no framing (clickjacking), no referrer leaks."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The policy of every response, the UI, the API and the interactive docs alike: only this
origin's scripts (neither the built UI nor the docs pages have inline ones). Workers may start
from a blob this origin's script made (ReDoc's search runs in one)."""


HTTP_STATUS: dict[type[DomainError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    BadInput: 422,
    Throttled: 429,
    Unavailable: 503,
}
"""Each kind of domain error's HTTP status: the first of an error's classes listed here."""


def error_response(exc: DomainError) -> JSONResponse:
    """A domain error as the API answers it: its status, `{"detail": ...}` and the headers the
    status calls for (the auth challenge, when to retry)."""
    status = next((HTTP_STATUS[k] for k in type(exc).__mro__ if k in HTTP_STATUS), 500)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized) and exc.challenge is not None:
        headers["WWW-Authenticate"] = exc.challenge
    retry_after = exc.retry_after if isinstance(exc, Throttled | Unavailable) else None
    if retry_after is not None:
        headers["Retry-After"] = str(math.ceil(retry_after))
    return JSONResponse({"detail": exc.detail}, status_code=status, headers=headers or None)


def _operation_id(route: APIRoute) -> str:
    # tag + function name, so the generated TypeScript client reads well (datasets-upload_dataset).
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The reaper runs beside the API: jobs whose workers died are re-dispatched."""
    _clean_staged_uploads()
    get_settings().server_secret()  # the embedded mode generates its secret on first start
    _load_export_libraries()
    reaper = Reaper()
    reaper.start()
    try:
        yield
    finally:
        reaper.stop()


def _load_export_libraries() -> None:
    """Import pyarrow's Parquet and CSV modules at the start, not in the first Parquet export:
    ~30 MB that a server answering one holds from then on anyway. The first export is faster,
    and the memory it takes is the export's own (bench/lib/review_export.py counts the server's
    RSS before its first export: pyarrow is in that figure, and the markdown says so).

    Arrow allocates through jemalloc unless ARROW_DEFAULT_MEMORY_POOL names a pool (Arrow reads
    it when pyarrow is imported): a server's first Parquet export of 1M pairs grew it by 55-57 MB
    with jemalloc, by 74-83 MB with mimalloc (Arrow's default in its Linux wheels) and by 88 MB
    with the system's malloc (one run), at the same speed. Setting the pool after the import
    (`pyarrow.set_memory_pool`) changes only Python's allocations, not the Parquet writer's: 74
    MB. A build without jemalloc says so once and keeps its default."""
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    try:
        import pyarrow.csv  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - pyarrow is a dependency; an export says so itself
        logging.getLogger(__name__).warning("pyarrow is missing: Parquet exports will fail")


def _clean_staged_uploads() -> None:
    """What a killed server left while parsing uploads goes at the next start."""
    try:
        removed = clean_staged(get_settings())
    except Exception:  # a database not migrated yet: the next start tries again
        logging.getLogger(__name__).warning("could not clean staged uploads", exc_info=True)
        return
    if removed:
        logging.getLogger(__name__).info("removed %d staged uploads left by a crash", removed)


def create_app() -> FastAPI:
    settings = get_settings()
    settings.check_production()
    app = FastAPI(
        lifespan=_lifespan,
        title="prefaudit",
        summary="Audit preference datasets with influence functions; prune the pairs that hurt.",
        version="0.1.0",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
    )
    mount_docs(app, app.openapi_url or f"{API_PREFIX}/openapi.json")
    api = APIRouter(prefix=API_PREFIX)
    for module in (health, auth, datasets, pairs, review, export, jobs, methods, teams):
        api.include_router(module.router)
    api.include_router(target_sets.router)
    api.include_router(judge.router)
    api.include_router(secrets.router)
    app.include_router(api)
    _mount_frontend(app, settings.frontend_dir)

    @app.exception_handler(RequestValidationError)
    async def authenticate_before_validating(
        request: Request, exc: RequestValidationError
    ) -> Response:
        """A malformed body on a route that needs a token is a 401 without a valid one: the
        body is parsed before the route's dependencies run, so its 422 would come first."""
        route = request.scope.get("route")
        if (
            isinstance(route, APIRoute)
            and _needs_token(route.dependant)
            and not await run_in_threadpool(_has_valid_token, request)
        ):
            return JSONResponse(
                {"detail": UNAUTHORIZED_DETAIL},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        errors = _without_lone_surrogates(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        """Every domain error raised by a route, its dependencies or a service, mapped once."""
        return error_response(exc)

    @app.exception_handler(DataError)
    async def unstorable_value(request: Request, exc: DataError) -> Response:
        """A value the database refuses (a NUL character in text, a number out of its range)
        is the request's fault: a 422, not a server error."""
        logging.getLogger(__name__).warning(
            "%s %s: the database refused a value: %s", request.method, request.url.path, exc.orig
        )
        return JSONResponse(
            {
                "detail": "a value in the request cannot be stored or compared: text with a NUL "
                "character, or a number out of the database's range"
            },
            status_code=422,
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    app.add_middleware(ServerTiming)  # the server's own time per request (backend/timing.py)
    # Outermost of ours: an oversized body is refused before anything reads it.
    app.add_middleware(
        BodyLimit,
        upload_paths=(f"{API_PREFIX}/datasets", f"{API_PREFIX}/datasets/preview"),
        upload_limit=settings.max_upload_bytes,
        default_limit=settings.max_body_bytes,
    )
    return app


def _without_lone_surrogates(value: object) -> object:
    """A validation error's details with every lone UTF-16 surrogate (which JSON allows as an
    escape but UTF-8 cannot encode) replaced by U+FFFD: echoing the bad input back must not fail."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {k: _without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_lone_surrogates(v) for v in value]
    return value


def _needs_token(dependant: Dependant) -> bool:
    return dependant.call in (get_caller, get_current_user) or any(
        _needs_token(sub) for sub in dependant.dependencies
    )


def _has_valid_token(request: Request) -> bool:
    value, _ = presented_token(request)
    if value is None:
        return False
    with session_scope() as session:
        return token_is_live(token_row(session, f"Bearer {value}"))


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
