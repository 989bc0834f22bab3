"""The `.stack/env` file: infra variables the processes get and other commands read."""

import os
from collections.abc import Mapping
from pathlib import Path


def render(values: Mapping[str, str]) -> str:
    """`KEY=value` lines, sorted, as honcho and pydantic-settings read them."""
    for key, value in values.items():
        if "\n" in value or "\n" in key:
            raise ValueError(f"{key}: environment values must be one line")
    return "".join(f"{key}={value}\n" for key, value in sorted(values.items()))


def parse(text: str) -> dict[str, str]:
    """The variables of an env file (blank lines and `#` comments ignored)."""
    values = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def write(path: Path, values: Mapping[str, str]) -> None:
    """Write the env file readable by its owner only (it may hold a database password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(render(values))


def read(path: Path) -> dict[str, str]:
    """The stack's env file, or {} when the stack never ran."""
    if not path.exists():
        return {}
    return parse(path.read_text(encoding="utf-8"))
