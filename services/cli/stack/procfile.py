"""The Procfile: which service processes the stack runs, and whether their modules exist."""

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

MODULE_COMMAND = re.compile(r"(?:^|\s)python3?\s+-m\s+([A-Za-z_][\w.]*)")


@dataclass(frozen=True, slots=True)
class Entry:
    """One Procfile line: a process name and its shell command."""

    name: str
    command: str

    @property
    def module(self) -> str | None:
        """The Python module run with `python -m`, if the command is one."""
        match = MODULE_COMMAND.search(self.command)
        return match.group(1) if match else None


def parse(text: str) -> list[Entry]:
    """The entries of a Procfile, in file order (blank lines and `#` comments ignored)."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, command = stripped.partition(":")
        if (
            not separator
            or not re.fullmatch(r"[A-Za-z0-9_-]+", name.strip())
            or not command.strip()
        ):
            raise ValueError(f"Procfile line {number} is not `name: command`: {line!r}")
        entries.append(Entry(name.strip(), command.strip()))
    return entries


def load(path: Path) -> list[Entry]:
    """The entries of the Procfile at `path`."""
    return parse(path.read_text(encoding="utf-8"))


def module_path(project_dir: Path, module: str) -> Path | None:
    """The source file `python -m module` would run from the project, or None when missing."""
    base = project_dir.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def missing_module(project_dir: Path, entry: Entry) -> str | None:
    """The module of `entry` when it cannot be found (else None).

    Project modules are looked up as files (importing them could start a service); anything else
    (a standard-library or installed module) through the import system.
    """
    module = entry.module
    if module is None:
        return None
    if (project_dir / module.split(".")[0]).is_dir():
        return None if module_path(project_dir, module) is not None else module
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    return None if found is not None else module
