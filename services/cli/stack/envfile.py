"""The `.stack/env` file: infra variables the processes get and other commands read.

Read with python-dotenv (as pydantic-settings reads env files); written single-quoted in the
form python-dotenv reads back exactly.
"""

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values


def quote(value: str) -> str:
    """A single-quoted dotenv value (only `\\` and `'` are escaped there)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(values: Mapping[str, str]) -> str:
    """`KEY='value'` lines, sorted."""
    for key, value in values.items():
        if "\n" in value or "\n" in key:
            raise ValueError(f"{key}: environment values must be one line")
    return "".join(f"{key}={quote(value)}\n" for key, value in sorted(values.items()))


def write(path: Path, values: Mapping[str, str]) -> None:
    """Write the env file readable by its owner only (it may hold a database password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(render(values))


def read(path: Path) -> dict[str, str]:
    """The variables of an env file, or {} when it does not exist (the stack never ran)."""
    if not path.exists():
        return {}
    values = dotenv_values(path, interpolate=False)
    return {key: value for key, value in values.items() if value is not None}
