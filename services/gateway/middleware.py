"""Request ids, the last-resort 500 that carries one, and request body limits.

A sane `X-Request-ID` is honoured, anything else replaced by a fresh id; it is exposed to logs
(`log_context`), to error bodies (`request.state.request_id`) and to the client (the header).
An exception nothing handled becomes the standard error body here, inside this middleware, so even
a 500 carries the request id, and never the exception's text.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Mapping

import orjson
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.logs import log_context

logger = logging.getLogger(__name__)

HEADER = "X-Request-ID"
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Pure ASGI middleware: `request.state.request_id`, the response header, the log field."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = given if _ACCEPTED.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except asyncio.CancelledError:
                # A library's own stray cancellation is an error like any other; a real one (the
                # server cancelling this task) goes on.
                task = asyncio.current_task()
                if started or (task is not None and task.cancelling()):
                    raise
                logger.exception("unhandled cancellation", extra={"path": scope.get("path")})
                await error_response(send_with_id, 500, "Internal server error", request_id)
            except Exception:
                logger.exception("unhandled error", extra={"path": scope.get("path")})
                if started:
                    raise
                await error_response(send_with_id, 500, "Internal server error", request_id)


# Multipart framing around the file: boundaries, part headers, the form's other fields.
MULTIPART_OVERHEAD = 64 * 1024


class BodyLimitMiddleware:
    """Refuse a request body larger than its path's limit before it is read: by its
    Content-Length when it has one, else as soon as the streamed body passes the limit (413)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        request_id = scope.get("state", {}).get("request_id")
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > max_bytes:
            await error_response(send, 413, "Payload too large", request_id)
            return
        received = 0
        refused = False

        async def limited() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Answer now and let the app see a client that went away.
                    refused = True
                    await error_response(send, 413, "Payload too large", request_id)
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited, send_unless_refused)
        except ClientDisconnect:
            # The disconnect is the one this middleware made up after answering 413.
            if not refused:
                raise


async def error_response(
    send: Send,
    status: int,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send the standard error body straight from a middleware."""
    body = orjson.dumps({"error": message, "status_code": status, "request_id": request_id})
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
