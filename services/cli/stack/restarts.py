"""Restarts and last exits of each program, read from supervisord's log (pure).

supervisord's XML-RPC tells a program's state and pid but not how often it was restarted, and
it forgets the last exit status as soon as it respawns. Its log keeps both, one line per event:

    2026-12-06 22:40:05,123 WARN exited: ingest (terminated by SIGKILL; not expected)
    2026-12-06 22:40:06,130 INFO spawned: 'ingest' with pid 4242
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.cli.stack.gate import GAVE_UP

LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \w+ "
    r"(?:(?P<started>supervisord started with pid \d+)"
    r"|spawned: '(?P<spawned>[^']+)' with pid \d+"
    r"|exited: (?P<exited>\S+) \((?P<why>.*); (?P<expected>not expected|expected)\)"
    r"|stopped: (?P<stopped>\S+) \()"
)
STATUS = re.compile(r"exit status (?P<code>-?\d+)|terminated by (?P<signal>SIG\w+)")


@dataclass(frozen=True, slots=True)
class Exit:
    """How a program last ended on its own (a stop request is not an exit)."""

    at: datetime
    description: str
    """supervisord's words: `exit status 1`, `terminated by SIGKILL`."""
    code: int | None
    signal: str | None
    expected: bool

    def to_json(self) -> dict[str, Any]:
        """The `last_exit` object of `stack status --json`."""
        return {
            "at": self.at.isoformat(timespec="seconds"),
            "code": self.code,
            "signal": self.signal,
            "expected": self.expected,
            "description": self.description,
        }

    def render(self) -> str:
        """Short form for the status table."""
        return f"{self.description} at {self.at.strftime('%H:%M:%S')}"


@dataclass(slots=True)
class History:
    """One program's restarts (spawns that followed an exit) and its last exit."""

    restarts: int = 0
    last_exit: Exit | None = None
    exited: bool = False
    """Whether the latest event was an exit (so the next spawn is a restart)."""


def read(log_text: str) -> dict[str, History]:
    """Each program's history since supervisord last started (local times, as it logs them)."""
    histories: dict[str, History] = {}
    for line in log_text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        if match["started"]:
            histories = {}
            continue
        at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S").astimezone()
        if name := match["spawned"]:
            history = histories.setdefault(name, History())
            if history.exited:
                history.restarts += 1
            history.exited = False
        elif name := match["exited"]:
            history = histories.setdefault(name, History())
            history.exited = True
            status = STATUS.search(match["why"])
            if status and status["code"] and int(status["code"]) == GAVE_UP:
                continue  # the crash-loop gate giving up: the last exit stays the service's own
            history.last_exit = Exit(
                at=at,
                description=match["why"],
                code=int(status["code"]) if status and status["code"] else None,
                signal=status["signal"] if status else None,
                expected=match["expected"] == "expected",
            )
        elif name := match["stopped"]:
            histories.setdefault(name, History()).exited = False
    return histories
