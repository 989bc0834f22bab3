"""What an audit event says about a request (pure): action name, target, outcome, masking."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.audit import Outcome, mask_text
from services.gateway.patterns import storable

# Response fields that name what a write created or changed (never secrets).
TARGET_FIELDS = ("id", "run_id", "exception_id", "user_id", "team_id", "username", "key")
SECRET_WORDS = ("password", "token", "secret", "authorization")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_VALUE = 200


def outcome_of(status_code: int) -> Outcome:
    """`success` for 1xx–3xx, `denied` for 401/403, `failed` for other 4xx, `error` for 5xx."""
    if status_code < 400:
        return "success"
    if status_code in (401, 403):
        return "denied"
    return "failed" if status_code < 500 else "error"


def action_of(route_name: str | None, method: str, path_params: Mapping[str, Any]) -> str:
    """The audited action: the route's name, with its `action` path parameter if it has one."""
    name = route_name or f"{method.lower()}.unrouted"
    action = path_params.get("action")
    return f"{name}.{action}" if action is not None else name


def clean(value: Any) -> str:
    """A target value as text: e-mail addresses masked, NULs replaced, bounded."""
    return storable(mask_text(str(value)))[:MAX_VALUE]  # type: ignore[index]


def target_of(path_params: Mapping[str, Any], response: Mapping[str, Any] | None) -> dict[str, str]:
    """What the action was done to: the path's ids, and the ids the response names."""
    target = {
        clean(name): clean(value)
        for name, value in path_params.items()
        if name != "action" and not _secret(name)
    }
    for name in TARGET_FIELDS:
        value = (response or {}).get(name)
        if name not in target and isinstance(value, str | int) and not isinstance(value, bool):
            target[name] = clean(value)
    return target


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)
