"""The stack's state file: what `up` started, so `down` stops exactly that."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.cli.stack.supervisor import Spawned


@dataclass(slots=True)
class StackState:
    """Processes the stack started, by name (`kafka`, `ingest`, `prometheus`, ...)."""

    processes: dict[str, Spawned] = field(default_factory=dict)
    postgres_private: bool = False
    """True when `up` started the private PostgreSQL cluster (so `down` stops it)."""

    def to_json(self) -> dict[str, Any]:
        """The file form."""
        return {
            "processes": {name: spawned.to_json() for name, spawned in self.processes.items()},
            "postgres_private": self.postgres_private,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StackState":
        """Read the file form."""
        return cls(
            processes={
                name: Spawned.from_json(value) for name, value in data.get("processes", {}).items()
            },
            postgres_private=bool(data.get("postgres_private", False)),
        )


def state_path(state_dir: Path) -> Path:
    """Where the state file lives."""
    return state_dir / "state.json"


def load(state_dir: Path) -> StackState:
    """The recorded state (empty when the stack never ran here)."""
    path = state_path(state_dir)
    if not path.exists():
        return StackState()
    return StackState.from_json(json.loads(path.read_text(encoding="utf-8")))


def save(state_dir: Path, state: StackState) -> None:
    """Write the state atomically (a crash never leaves half a file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state.to_json(), indent=2), encoding="utf-8")
    os.replace(temporary, path)
