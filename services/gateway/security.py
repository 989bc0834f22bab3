"""OWASP security headers and `Server-Timing` on every gateway response (SPEC §5).

The API answers JSON only, so its Content-Security-Policy forbids everything; the interactive
docs (`/docs`, `/redoc`) load Swagger UI from its CDN and run inline scripts, so they get a
policy relaxed exactly that much.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
STATIC_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Cache-Control", "no-store"),
)


def security_headers(path: str, hsts_seconds: int = 0) -> list[tuple[str, str]]:
    """The security headers of a response to `path`."""
    docs = path in DOCS_PATHS
    # Swagger UI's CDN assets carry no Cross-Origin-Resource-Policy: COEP would block them.
    headers = [h for h in STATIC_HEADERS if not (docs and h[0] == "Cross-Origin-Embedder-Policy")]
    headers.append(("Content-Security-Policy", DOCS_CSP if docs else API_CSP))
    if hsts_seconds:
        headers.append(("Strict-Transport-Security", f"max-age={hsts_seconds}; includeSubDomains"))
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI middleware: security headers and `Server-Timing: app;dur=<ms>` on every answer.

    The duration is the app's time until it started the response (a streamed body goes on).
    """

    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self.app = app
        self.hsts_seconds = hsts_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security_headers(path, self.hsts_seconds):
                    if name not in headers:
                        headers[name] = value
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers.append("Server-Timing", f"app;dur={elapsed_ms:.1f}")
            await send(message)

        await self.app(scope, receive, send_with_headers)
