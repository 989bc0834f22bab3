"""Rate limits (SPEC §5): login per client IP; runs, uploads and the rest of the API per user.

Counters live in a `limits` storage named by a URI: `memory://` for one process, `redis://...`
so that every gateway replica counts against the same windows. A refused request answers 429 with
`Retry-After` and `X-RateLimit-Limit/Remaining/Reset`; allowed ones carry the `X-RateLimit-*`
headers too, so clients can pace themselves.

A storage URI that `limits` cannot use fails the gateway's startup with a message naming
GATEWAY_RATE_LIMIT_STORAGE. A storage that does not answer fails open: requests are answered
without rate limits (and without `X-RateLimit-*` headers) until it answers again. The outage is
logged once at ERROR when it begins and once at WARNING when it ends, and every request answered
without a limit counts in `loan_engine_rate_limit_unchecked_requests_total`. While the storage is
down, one request every `STORAGE_RETRY_SECONDS` asks it again; the others do not wait for it.
Readiness does not depend on it, so an outage of the shared store never takes every replica out of
the load balancer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, WindowStats, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.metrics import RATE_LIMIT_UNCHECKED
from services.gateway.identity.tokens import InvalidToken, verify_token
from services.gateway.middleware import error_response
from services.gateway.settings import GatewaySettings

logger = logging.getLogger(__name__)

API_PREFIX = "/api"
# A request waits at most this long for its counters: a slow store must not slow the API down.
STORAGE_TIMEOUT_SECONDS = 0.5
STARTUP_CHECK_SECONDS = 3.0
# While the storage is down, requests go unchecked without asking it, except one per this interval.
STORAGE_RETRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Limit:
    """One named limit and whether it counts per client IP (else per user)."""

    name: str
    item: RateLimitItem
    per_ip: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    """The gateway's limits, parsed from settings (`"10/minute"`)."""

    login: Limit
    runs: Limit
    uploads: Limit
    api: Limit

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Limits:
        """Parse every limit of the settings."""
        return cls(
            login=Limit("login", parse(settings.rate_limit_login), per_ip=True),
            runs=Limit("runs", parse(settings.rate_limit_runs)),
            uploads=Limit("uploads", parse(settings.rate_limit_uploads)),
            api=Limit("api", parse(settings.rate_limit_api)),
        )

    def for_request(self, method: str, path: str) -> Limit | None:
        """The limit a request counts against, or None outside the API."""
        if not path.startswith(f"{API_PREFIX}/"):
            return None
        if method == "POST" and path == f"{API_PREFIX}/auth/login":
            return self.login
        if method == "POST" and path == f"{API_PREFIX}/pipeline/run":
            return self.runs
        if method == "POST" and path == f"{API_PREFIX}/files/upload":
            return self.uploads
        return self.api


@dataclass(slots=True)
class Outage:
    """Whether the rate-limit storage is down, since when, and when to ask it again."""

    retry_seconds: float
    since: float | None = None
    retry_at: float = 0.0

    def should_ask(self, now: float) -> bool:
        """Whether to ask the storage now: always while it answers, once per interval while down."""
        if self.since is None:
            return True
        if now < self.retry_at:
            return False
        self.retry_at = now + self.retry_seconds  # one asker per interval; the rest go unchecked
        return True

    def failed(self, now: float) -> bool:
        """Record a failure; True when it begins an outage."""
        self.retry_at = now + self.retry_seconds
        if self.since is not None:
            return False
        self.since = now
        return True

    def answered(self, now: float) -> float | None:
        """Record an answer; the length of the outage it ends, None when there was none."""
        if self.since is None:
            return None
        lasted, self.since = now - self.since, None
        return lasted


def async_storage(uri: str) -> Storage:
    """The asynchronous `limits` storage of a URI (`memory://`, `redis://host:6379/0`, ...)."""
    return storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")  # type: ignore[return-value]


def storage_label(uri: str) -> str:
    """A storage URI fit for a log line: its password, if any, replaced by `***`."""
    scheme, separator, rest = uri.partition("://")
    userinfo, at, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not (separator and at and colon):
        return uri
    return f"{scheme}://{user}:***@{host}"


def client_ip(scope: Scope) -> str:
    """The peer address: uvicorn puts a proxy's `X-Forwarded-For` there only when that proxy is
    in GATEWAY_FORWARDED_ALLOW_IPS, so a made-up header from anyone else counts for nothing."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def user_identity(scope: Scope, settings: GatewaySettings) -> str | None:
    """The user id of a valid bearer access token, None without one."""
    authorization = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return str(verify_token(settings, token.strip(), "access").user_id)
    except InvalidToken:
        return None


class RateLimitMiddleware:
    """Pure ASGI middleware applying `Limits` with a moving window."""

    def __init__(
        self,
        app: ASGIApp,
        settings: GatewaySettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.settings = settings
        self.limits = Limits.from_settings(settings)
        self.clock = clock
        self.storage = storage_label(settings.rate_limit_storage)
        self.limiter: MovingWindowRateLimiter | None = None
        self.outage = Outage(STORAGE_RETRY_SECONDS)
        self.unusable: str | None = None
        try:
            self.limiter = MovingWindowRateLimiter(async_storage(settings.rate_limit_storage))
        except ConfigurationError as error:
            # Raised here (Starlette builds middlewares on its first call), uvicorn would take it
            # for "lifespan unsupported" and answer 500 to every request; startup fails instead.
            reason = str(error).replace(settings.rate_limit_storage, self.storage)
            self.unusable = f"GATEWAY_RATE_LIMIT_STORAGE={self.storage} is not usable: {reason}"

    def identity(self, scope: Scope, limit: Limit) -> str:
        """Who a request is counted for: its IP for per-IP limits and anonymous callers."""
        if not limit.per_ip and (user := user_identity(scope, self.settings)):
            return f"user:{user}"
        return f"ip:{client_ip(scope)}"

    async def lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Fail startup on an unusable storage URI; say whether the storage answers."""
        if self.limiter is None:
            await receive()  # lifespan.startup
            await send({"type": "lifespan.startup.failed", "message": self.unusable})
            raise ConfigurationError(self.unusable)
        try:
            async with asyncio.timeout(STARTUP_CHECK_SECONDS):
                reachable = await self.limiter.storage.check()
        except Exception:  # any failure means the same: the storage does not answer
            reachable = False
        if reachable:
            logger.info("rate limit storage ready", extra={"storage": self.storage})
        else:
            self.unavailable(self.clock(), "did not answer the startup check")
        await self.app(scope, receive, send)

    def unavailable(self, now: float, error: str) -> None:
        """Record a storage failure; log it when it begins an outage."""
        if self.outage.failed(now):
            logger.error(
                "rate limit storage unavailable; requests are not rate limited until it answers",
                extra={"storage": self.storage, "error": error},
            )

    async def count(self, limit: Limit, who: str) -> tuple[bool, WindowStats] | None:
        """Count a request: whether it is allowed and its window; None when it went unchecked."""
        if self.limiter is None:  # startup failed on it; served without a lifespan, fail open
            self.unavailable(self.clock(), str(self.unusable))
            return None
        if not self.outage.should_ask(self.clock()):
            return None
        try:
            async with asyncio.timeout(STORAGE_TIMEOUT_SECONDS):
                allowed = await self.limiter.hit(limit.item, limit.name, who)
                stats = await self.limiter.get_window_stats(limit.item, limit.name, who)
        except Exception as error:  # fail open: a rate-limit outage must not be an API outage
            self.unavailable(self.clock(), repr(error)[:200])
            return None
        if (lasted := self.outage.answered(self.clock())) is not None:
            logger.warning(
                "rate limit storage answers again; requests are rate limited",
                extra={"storage": self.storage, "outage_seconds": round(lasted, 3)},
            )
        return allowed, stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_request(scope.get("method", ""), scope.get("path", ""))
        if limit is None:
            await self.app(scope, receive, send)
            return
        who = self.identity(scope, limit)
        counted = await self.count(limit, who)
        if counted is None:
            RATE_LIMIT_UNCHECKED.inc()
            await self.app(scope, receive, send)
            return
        allowed, stats = counted
        reset = max(math.ceil(stats.reset_time - self.clock()), 0)
        headers = {
            "X-RateLimit-Limit": str(limit.item.amount),
            "X-RateLimit-Remaining": str(max(stats.remaining, 0)),
            "X-RateLimit-Reset": str(reset),
        }
        if not allowed:
            logger.warning("rate limit exceeded", extra={"limit": limit.name, "who": who})
            request_id = scope.get("state", {}).get("request_id")
            await error_response(
                send,
                429,
                "Too many requests",
                request_id,
                {**headers, "Retry-After": str(max(reset, 1))},
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)
