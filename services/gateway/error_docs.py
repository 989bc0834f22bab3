"""The error answers of every API operation, documented once for the whole OpenAPI.

Each operation's answers come from what the gateway really does with it:

- 401 wherever a bearer token is required (and on `/auth/login` and `/auth/refresh`, which refuse
  bad credentials); 403 where a role is required;
- 404 where the path names a resource;
- 400 and 413 where a request has a body (one that does not parse; the body limit), 422 where
  anything is validated, 429 on every
  API route (rate limits; answered only where they are enabled);
- 400, 409 and 503 where a route declares them with `responses=` (semantic refusals the schema
  cannot state, conflicts with the current state, the event log out of reach).

Every error answer has the one body of `services.gateway.errors.ErrorResponse`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_flat_params
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from services.gateway.errors import ErrorResponse

DESCRIPTIONS = {
    400: "The request is well-formed but refused (the message says why).",
    401: "Missing, invalid, expired or revoked credentials.",
    403: "The user's role does not allow this.",
    404: "No such resource (or not visible to this user).",
    409: "The request conflicts with the resource's current state.",
    413: "The request body is larger than the limit.",
    422: "The request does not match this operation's schema.",
    429: "Rate limit exceeded; `Retry-After` says when to try again.",
    503: "A dependency (the event log) is out of reach; try again.",
}
SCHEMA_NAME = "ErrorResponse"
_AUTH_PATHS = {"/api/auth/login", "/api/auth/refresh"}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def error_codes(route: Any, authenticate: Callable[..., Any]) -> set[int]:
    """The error statuses `route` answers with."""
    calls = list(_calls(route.dependant))
    codes = {int(code) for code in route.responses if 400 <= int(code) < 600}
    if authenticate in calls or route.path in _AUTH_PATHS:
        codes.add(401)
    if any(getattr(call, "required_roles", None) for call in calls):
        codes.add(403)
    if route.dependant.path_params:
        codes.add(404)
    if route.body_field is not None:
        # 400: a body that is not what its content type says (JSON that does not parse).
        codes.update((400, 413, 422))
    if get_flat_params(route.dependant):
        codes.add(422)
    if route.path.startswith("/api/"):
        codes.add(429)
    return codes


def _reference() -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{SCHEMA_NAME}"}


def install_error_docs(app: FastAPI, authenticate: Callable[..., Any]) -> None:
    """Make `app.openapi()` document every operation's error answers with the error body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        definitions = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definitions.pop("$defs", {}))
        components[SCHEMA_NAME] = definitions
        # Routes of included routers come as contexts carrying the effective path, dependencies
        # and responses (FastAPI includes routers lazily).
        for route in iter_route_contexts(app.routes):
            if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
                continue
            for method in route.methods:
                operation = schema["paths"][route.path_format][method.lower()]
                answers = operation.setdefault("responses", {})
                codes = error_codes(route, authenticate)
                codes.update(int(code) for code in answers if code.isdigit() and int(code) >= 400)
                for code in sorted(codes):
                    answer = answers.setdefault(str(code), {})
                    fallback = DESCRIPTIONS.get(code, "Error")
                    answer["description"] = answer.get("description") or fallback
                    answer["content"] = {"application/json": {"schema": _reference()}}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route for the error statuses only it knows it answers with."""
    return {code: {"description": DESCRIPTIONS[code]} for code in codes}
