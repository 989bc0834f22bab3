"""The start gate of every supervised service: back-off for a crash loop (stdlib only).

supervisord backs off only while a program dies within `startsecs` of its start; a program that
crashes after running a while is restarted at once, for ever. So each program's command starts
as `python -m services.cli.stack.gate NAME STATE WINDOW FREE CAP LIMIT HOLD -- COMMAND`: the gate
records the start in `<state>/crashes/NAME.json` and, when the program already started more than
FREE times within the last WINDOW seconds, waits (2 s, 4 s, 8 s, ... at most CAP s) before it
execs the command (the pid stays the service's own). After LIMIT restarts within the window it
gives up: after HOLD seconds (longer than supervisord's `startsecs`, so this is no quick death
to retry) it exits with `GAVE_UP`, which supervisord is told is an expected exit: the program
stays down (`stack status`: failed, "crash-looping") until `stack up` clears the record.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

GAVE_UP = 97
"""The gate's exit code when a program crash-loops past its limit (never restarted)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How many restarts a window allows before and after back-off."""

    window: float
    """Seconds of start history that count."""
    free: int
    """Restarts within the window started at once."""
    cap: float
    """Longest wait before a restart, seconds."""
    limit: int
    """Restarts within the window after which the program is given up."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the gate does with this start."""

    restarts: int
    """Earlier starts within the window: restarts so far."""
    delay: float
    gave_up: bool


def decide(starts: list[float], now: float, policy: Policy) -> Decision:
    """Pure: given the earlier starts (epoch seconds), wait how long, or give up."""
    restarts = len([at for at in starts if now - at <= policy.window])
    if restarts > policy.limit:
        return Decision(restarts, 0.0, True)
    beyond = restarts - policy.free
    delay = 0.0 if beyond <= 0 else min(policy.cap, 2.0**beyond)
    return Decision(restarts, delay, False)


def record_file(state: Path, name: str) -> Path:
    """Where the gate keeps a program's starts."""
    return state / "crashes" / f"{name}.json"


@dataclass(frozen=True, slots=True)
class Record:
    """A program's recent starts, and what the gate last decided."""

    starts: list[float]
    waiting_until: float = 0.0
    gave_up: bool = False

    @classmethod
    def load(cls, path: Path) -> Record:
        """The record at `path` (empty when missing or unreadable)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                starts=[float(at) for at in data.get("starts", [])],
                waiting_until=float(data.get("waiting_until", 0.0)),
                gave_up=bool(data.get("gave_up", False)),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return cls(starts=[])

    def save(self, path: Path) -> None:
        """Write the record atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        body = {"starts": self.starts, "waiting_until": self.waiting_until}
        partial.write_text(json.dumps({**body, "gave_up": self.gave_up}), encoding="utf-8")
        partial.replace(path)


def clear(state: Path, name: str) -> None:
    """Forget a program's starts (`stack up` starts it afresh)."""
    record_file(state, name).unlink(missing_ok=True)


def describe(record: Record, policy: Policy, now: float) -> str | None:
    """The crash loop `stack status` shows, or None when the program is not in one."""
    minutes = f"{policy.window / 60:g} min"
    if record.gave_up:
        # The starts the gate counted when it gave up, however long ago that was.
        return (
            f"crash-looping: gave up after {len(record.starts) - 1} restarts within {minutes}; "
            "`loan-engine stack up` starts it again"
        )
    if record.waiting_until > now:
        recent = len([at for at in record.starts if now - at <= policy.window]) - 1
        return (
            f"crash-looping: {recent} restarts within {minutes}, "
            f"next start in {record.waiting_until - now:.0f} s"
        )
    return None


def main(argv: list[str]) -> None:
    """`gate NAME STATE WINDOW FREE CAP LIMIT HOLD -- COMMAND`: wait or give up, then exec."""
    separator = argv.index("--")
    name, state, window, free, cap, limit, hold = argv[:separator]
    command = " ".join(argv[separator + 1 :])  # one argument: the Procfile command
    policy = Policy(float(window), int(free), float(cap), int(limit))
    path = record_file(Path(state), name)
    now = time.time()
    previous = Record.load(path)
    decision = decide(previous.starts, now, policy)
    kept = [at for at in previous.starts if now - at <= policy.window]
    if decision.gave_up:
        Record(kept, gave_up=True).save(path)
        sys.stderr.write(
            f"{name} restarted {decision.restarts} times within {policy.window:g} s: "
            "giving up until `loan-engine stack up`\n"
        )
        sys.stderr.flush()
        time.sleep(float(hold))
        sys.exit(GAVE_UP)
    if decision.delay:
        Record([*kept, now], waiting_until=now + decision.delay).save(path)
        sys.stderr.write(
            f"{name} restarted {decision.restarts} times within {policy.window:g} s: "
            f"waiting {decision.delay:g} s before starting it again\n"
        )
        sys.stderr.flush()
        time.sleep(decision.delay)
    else:
        Record([*kept, now]).save(path)
    os.execv("/bin/sh", ["/bin/sh", "-c", f"exec {command}"])


if __name__ == "__main__":
    main(sys.argv[1:])
