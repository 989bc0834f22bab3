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


UPGRADE_ALL = """\
import sys
from alembic.config import main
for pair in sys.argv[1:]:
    config, section = pair.split("::", 1)
    main(["-c", config, "-n", section, "upgrade", "head"])
"""
"""Every migration in one interpreter: Alembic and SQLAlchemy are imported once, not per config."""


def upgrade_all(
    project_dir: Path,
    environment: dict[str, str],
    progress: Progress,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> list[str]:
    """Run `alembic upgrade head` for every existing config, in order; the names applied."""
    wanted = pending(project_dir, migrations)
    if not wanted:
        return []
    names = [migration.name for migration in wanted]
    progress(f"migrating {', '.join(names)}")
    result = subprocess.run(
        [sys.executable, "-c", UPGRADE_ALL]
        + [f"{migration.config}::{migration.section}" for migration in wanted],
        cwd=project_dir,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StartFailed(
            f"migrating {', '.join(names)} failed:\n{(result.stdout + result.stderr)[-3000:]}"
        )
    return names
