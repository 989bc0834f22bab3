"""Publish one audit.v1 event per write request (and per login and logout), after the answer.

Pure ASGI, innermost, so it sees the route FastAPI matched. The actor is the principal the
authentication dependency left in the request state; a login's actor is read from the token it
issued (or, when refused, the user name it was given, masked). Bodies are never copied into the
event: only ids from the path and from the response. A broker outage is logged, never answered.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID, uuid4

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.audit import AuditRecorded
from contracts.topics import AUDIT
from services.gateway.audit.domain import (
    WRITE_METHODS,
    action_of,
    clean,
    outcome_of,
    target_of,
)
from services.gateway.identity import repository
from services.gateway.identity.tokens import InvalidToken, verify_token

logger = logging.getLogger(__name__)
LOGIN_PATH = "/api/auth/login"
MAX_CAPTURE = 64 * 1024


class AuditMiddleware:
    """Audit every write request under `/api`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in WRITE_METHODS
            or not scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return
        login = scope["path"] == LOGIN_PATH
        request_body = bytearray()
        response_body = bytearray()
        status = {"code": 500, "json": False}

        async def receive_captured() -> Message:
            message = await receive()
            if login and message["type"] == "http.request" and len(request_body) < MAX_CAPTURE:
                request_body.extend(message.get("body", b""))
            return message

        async def send_captured(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = dict(message.get("headers") or ())
                status["json"] = headers.get(b"content-type", b"").startswith(b"application/json")
            elif (
                message["type"] == "http.response.body"
                and status["json"]
                and len(response_body) < MAX_CAPTURE
            ):
                response_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_captured if login else receive, send_captured)
        finally:
            await self._record(scope, status["code"], bytes(request_body), bytes(response_body))

    async def _record(
        self, scope: Scope, status_code: int, request_body: bytes, response_body: bytes
    ) -> None:
        app = scope["app"]
        settings = app.state.settings
        if not settings.audit_enabled:
            return
        try:
            event = await _event(scope, status_code, request_body, response_body)
            key = next(iter(event.target.values()), None) or event.request_id or str(event.event_id)
            await app.state.publisher.publish(AUDIT, key, event)
        except Exception as error:  # the answer is sent: an audit failure must not change it
            logger.error(
                "audit event not published",
                extra={"error": type(error).__name__, "path": scope.get("path")},
            )


async def _event(
    scope: Scope, status_code: int, request_body: bytes, response_body: bytes
) -> AuditRecorded:
    state = scope.get("state") or {}
    route = scope.get("route")
    path_params = scope.get("path_params") or {}
    response = _json(response_body) if len(response_body) < MAX_CAPTURE else None
    actor_id, actor, role = await _actor(scope, state, request_body, response)
    client = scope.get("client")
    return AuditRecorded(
        event_id=uuid4(),
        occurred_at=datetime.now(UTC),
        source="api",
        actor_id=actor_id,
        actor=actor,
        actor_role=role,
        action=action_of(getattr(route, "name", None), scope["method"], path_params),
        method=scope["method"],
        path=getattr(route, "path", None) or clean(scope["path"]),
        target=target_of(path_params, response if status_code < 400 else None),
        request_id=state.get("request_id"),
        client_address=client[0] if client else None,
        outcome=outcome_of(status_code),
        status_code=status_code,
    )


async def _actor(
    scope: Scope, state: dict[str, Any], request_body: bytes, response: dict[str, Any] | None
) -> tuple[UUID | None, str | None, str | None]:
    principal = state.get("principal")
    if principal is not None:
        return principal.user_id, clean(principal.username), principal.role
    if scope["path"] != LOGIN_PATH:
        return None, None, None
    app = scope["app"]
    token = (response or {}).get("access_token")
    if isinstance(token, str):
        try:
            claims = verify_token(app.state.settings, token, "access")
        except InvalidToken:
            claims = None
        if claims is not None:
            async with app.state.sessionmaker() as session:
                user = await repository.get_user_by_id(session, claims.user_id)
            if user is not None:
                return user.id, clean(user.username), user.role
    username = parse_qs(request_body.decode("utf-8", "replace")).get("username", [None])[0]
    return None, clean(username) if username else None, None


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
