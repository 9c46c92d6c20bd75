"""The capture app (/app) and the review console (/console) as static files, and the
security headers every response carries."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from biomatch.accountability.reports import TRANSPARENCY_STYLE

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
# Pages of OpenAPI's own (Swagger UI, ReDoc) load their scripts inline and from a CDN.
_OPENAPI_PAGES = ("/docs", "/redoc")


def _style_hash(style: str) -> str:
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return f"'sha256-{digest}'"


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'self' {_style_hash(TRANSPARENCY_STYLE)}",
        "img-src 'self' blob: data:",
        "media-src 'self' blob: mediastream:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def install_web(app: FastAPI) -> None:
    """Serve the app and the console, and put the security headers on every response."""
    app.mount("/app", StaticFiles(directory=WEB_ROOT / "app", html=True), name="app")
    app.mount("/console", StaticFiles(directory=WEB_ROOT / "console", html=True), name="console")
    app.mount("/shared", StaticFiles(directory=WEB_ROOT / "shared"), name="shared")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/app/")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        headers = response.headers
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        if not request.url.path.startswith(_OPENAPI_PAGES):
            headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.url.scheme == "https":
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # Answers about people are never cached; the app's files are revalidated.
        headers.setdefault("Cache-Control", "no-store" if _is_api(request) else "no-cache")
        return response


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/v1/")
