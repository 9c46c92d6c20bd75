"""The error body every refusal has, and which statuses each route documents with it."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, FastAPI, UploadFile
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable; the README's error table lists them.")
    message: str = Field(description="For a person.")
    details: Any = Field(None, description="What was wrong, where the code says more.")


class ErrorBody(BaseModel):
    error: ErrorDetail


DESCRIPTIONS = {
    400: "Malformed request body",
    401: "No valid token",
    403: "The role or the gallery's policy does not allow it",
    404: "No such gallery, subject, encounter, image or route",
    409: "Conflicts with what is stored",
    413: "An upload, a form field or the number of images is too large",
    422: "Invalid request, capture or search context",
    429: "Rate limited or failed logins throttled (Retry-After)",
    503: "Busy (Retry-After) or a model is not installed",
}


def statuses_of(route: APIRoute, path: str) -> set[int]:
    """What the route can answer besides success: every authenticated route 401/403/422/429;
    one that names a stored thing in its path 404/409; a write 409; a POST 503 (busy, or a
    model missing); one with an upload 400/413 too."""
    if path.endswith("/health"):
        return {503}
    methods = route.methods or set()
    statuses = {401, 403, 422, 429}
    if "{" in path:
        statuses |= {404, 409}
    if methods & {"POST", "DELETE"}:
        statuses.add(409)
    if "POST" in methods:
        statuses.add(503)
    if _takes_upload(route):
        statuses |= {400, 413}
    return statuses


def _takes_upload(route: APIRoute) -> bool:
    for parameter in inspect.signature(route.endpoint).parameters.values():
        if "UploadFile" in str(parameter.annotation) or parameter.annotation is UploadFile:
            return True
    return False


def document_errors(app: FastAPI, prefix: str, routers: list[APIRouter]) -> None:
    """Make the OpenAPI document list, on every route, each error status it can answer,
    with the body it really has (``ErrorBody``; also for 422, in place of FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas["ErrorBody"] = body
            for router in routers:
                for route in router.routes:
                    if isinstance(route, APIRoute):
                        path = prefix + route.path_format
                        _document_route(document["paths"][path], route, path)
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_route(path_item: dict[str, Any], route: APIRoute, path: str) -> None:
    reference = {"$ref": "#/components/schemas/ErrorBody"}
    for method in route.methods or set():
        responses = path_item[method.lower()]["responses"]
        for status in sorted(statuses_of(route, path)):
            responses[str(status)] = {
                "description": DESCRIPTIONS[status],
                "content": {"application/json": {"schema": reference}},
            }
