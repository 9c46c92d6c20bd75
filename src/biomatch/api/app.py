"""The FastAPI application: wiring, error mapping, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from biomatch import __version__
from biomatch.api import app_routes, multimodal_routes, routes
from biomatch.api.error_docs import document_errors
from biomatch.api.web import install_web
from biomatch.config import Settings
from biomatch.errors import BioMatchError
from biomatch.service import BioMatch

log = logging.getLogger("biomatch.api")


def create_app(settings: Settings | None = None, core: BioMatch | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.core = core or BioMatch(settings or Settings())
        retention = asyncio.create_task(_retention_loop(app.state.core))
        yield
        retention.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retention  # it releases the retention lease
        app.state.core.close()

    app = FastAPI(
        title="BioMatch",
        version=__version__,
        summary="Face 1:1 verification and 1:N identification with calibrated error rates.",
        lifespan=lifespan,
    )
    app.include_router(routes.router, prefix="/v1")
    app.include_router(multimodal_routes.router, prefix="/v1")
    app.include_router(app_routes.router, prefix="/v1")
    install_web(app)
    document_errors(app, "/v1", [routes.router, multimodal_routes.router, app_routes.router])
    _install_error_handlers(app)
    return app


async def _retention_loop(core: BioMatch) -> None:
    """Delete expired probes and enrolments periodically, for as long as the service runs.
    One process of the deployment runs the job: the holder of the retention lease (the
    first to take it); the others try each period and take over when the holder is gone."""
    lease = core.db.lease("retention")
    try:
        while True:
            try:
                if await run_in_threadpool(lease.try_acquire):
                    result = await run_in_threadpool(core.run_retention)
                    if result.probes_deleted or result.subjects_deleted:
                        log.info("retention: %s", result.model_dump())
            except Exception:
                log.exception("retention run failed; retrying next period")
            await asyncio.sleep(core.settings.retention_interval_s)
    finally:
        lease.release()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BioMatchError)
    async def biomatch_error(_: Request, exc: BioMatchError) -> JSONResponse:
        headers = {}
        if "retry_after_s" in exc.details:
            headers["Retry-After"] = str(max(1, round(exc.details["retry_after_s"])))
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(
            status_code=exc.http_status, content={"error": exc.to_dict()}, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]}
            for error in exc.errors()
        ]
        body = {"code": "invalid_request", "message": "The request is not valid."}
        return JSONResponse(status_code=422, content={"error": {**body, "details": problems}})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status, code = _http_code(exc)
        body = {"code": code, "message": str(exc.detail)}
        return JSONResponse(status_code=status, content={"error": body})

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        body = {"code": "internal_error", "message": "An unexpected error occurred."}
        return JSONResponse(status_code=500, content={"error": body})


def _http_code(exc: StarletteHTTPException) -> tuple[int, str]:
    """Status and code of an error raised by the framework, before a route runs."""
    if exc.status_code == 400 and isinstance(exc.__context__, MultiPartException):
        if "maximum size" in str(exc.detail):
            return 413, "form_field_too_large"  # a non-file form field over 1 MB
        return 400, "malformed_body"
    codes = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}
    return exc.status_code, codes.get(exc.status_code, "http_error")
