"""The gateway's error tree: each error carries its HTTP status; one handler renders them all.

Bodies are `{"error", "status_code", "request_id"}` (plus `details` for 422) and never carry a
stack trace, an internal path or an exception's text from below the gateway. Exceptions nobody
handles become a bare 500 in `services.gateway.middleware`.
"""

from __future__ import annotations

from typing import Any

from asyncpg.exceptions import CharacterNotInRepertoireError, UntranslatableCharacterError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException


class GatewayError(Exception):
    """Base of every error the API answers with; `status_code` says how."""

    status_code = 500
    default_message = "Internal server error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = headers


class BadRequest(GatewayError):
    status_code = 400
    default_message = "Bad request"


class Unauthorized(GatewayError):
    status_code = 401
    default_message = "Not authenticated"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(GatewayError):
    status_code = 403
    default_message = "Not allowed"


class NotFound(GatewayError):
    status_code = 404
    default_message = "Not found"


class Conflict(GatewayError):
    status_code = 409
    default_message = "Conflict"


class PayloadTooLarge(GatewayError):
    status_code = 413
    default_message = "Payload too large"


class Unprocessable(GatewayError):
    status_code = 422
    default_message = "Validation error"


class Unavailable(GatewayError):
    status_code = 503
    default_message = "Service unavailable"


class ValidationDetail(BaseModel):
    """Where a request failed validation and why."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: str
    status_code: int
    request_id: str | None
    details: list[ValidationDetail] | None = None


# Text PostgreSQL cannot store (a NUL character; a lone surrogate never gets this far: pydantic
# refuses it as invalid unicode).
_UNSTORABLE_TEXT = (CharacterNotInRepertoireError, UntranslatableCharacterError)


def request_id_of(request: Request) -> str | None:
    """The request id the middleware assigned (None outside a request)."""
    return getattr(request.state, "request_id", None)


def error_body(
    request: Request, status_code: int, message: str, details: Any | None = None
) -> dict[str, Any]:
    """The JSON body of every error answer."""
    body: dict[str, Any] = {
        "error": message,
        "status_code": status_code,
        "request_id": request_id_of(request),
    }
    if details is not None:
        body["details"] = details
    return body


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and what: pydantic's `input` and `ctx` may echo secrets or internal objects.
    return [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in error.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the JSON error body, in one place."""

    @app.exception_handler(GatewayError)
    async def on_gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        body = error_body(request, error.status_code, error.message)
        return JSONResponse(body, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        details = _validation_details(error)
        return JSONResponse(error_body(request, 422, "Validation error", details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "HTTP error"
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(
            error_body(request, error.status_code, message), error.status_code, headers=headers
        )

    @app.exception_handler(DBAPIError)
    async def on_database_error(request: Request, error: DBAPIError) -> JSONResponse:
        if isinstance(getattr(error.orig, "__cause__", None), _UNSTORABLE_TEXT):
            message = "Text must not contain NUL characters"
            return JSONResponse(error_body(request, 422, message), 422)
        raise error


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (`Allow` of a 405)."""
    methods: set[str] = set()
    # Routes of included routers come as contexts with their effective path (FastAPI includes
    # routers lazily).
    for route in iter_route_contexts(request.app.router.routes):
        pattern = getattr(route, "path_regex", None)
        route_methods = getattr(route, "methods", None)
        if pattern is not None and route_methods and pattern.match(request.url.path):
            methods.update(route_methods)
    return sorted(methods)
