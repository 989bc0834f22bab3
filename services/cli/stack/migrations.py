"""Schema migrations the stack applies after PostgreSQL is up: one list, in order."""

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.cli.stack.errors import StartFailed

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Migration:
    """An Alembic configuration to upgrade to head (skipped while its file does not exist)."""

    name: str
    config: str
    """Path of the alembic ini file, relative to the project directory."""
    section: str
    """The named section of that file (`alembic -n SECTION`)."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration("gateway", "alembic.ini", "gateway"),
    Migration("reporting", "alembic.ini", "reporting"),
)
"""Every Alembic config of the project; a service with its own schema adds one line here."""


def pending(project_dir: Path, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[Migration]:
    """The migrations whose config exists in this checkout."""
    return [migration for migration in migrations if (project_dir / migration.config).is_file()]


def upgrade_all(
    project_dir: Path,
    environment: dict[str, str],
    progress: Progress,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> list[str]:
    """Run `alembic upgrade head` for every existing config; return the names applied."""
    applied = []
    for migration in pending(project_dir, migrations):
        progress(f"migrating {migration.name} ({migration.config})")
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", migration.config, "-n", migration.section]
            + ["upgrade", "head"],
            cwd=project_dir,
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StartFailed(
                f"migration {migration.name} failed:\n{(result.stdout + result.stderr)[-3000:]}"
            )
        applied.append(migration.name)
    return applied
