"""The scoring service's routing thresholds as data anyone may read (SPEC §8).

Scoring routes each loan by its versioned policy (`services/scoring/policies/<version>.json`,
interpreted by `services/scoring/domain.py`) and names that version on the loan. A person's
decision goes against the model when it goes against the side of the band the loan's score sits
on, so the gateway must read the band of the policy that routed that loan, not a copy of its own.
Pure: standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

POLICIES_DIR = Path(__file__).resolve().parent.parent / "services" / "scoring" / "policies"
VERSION_PATTERN = re.compile(r"\d+(\.\d+)*")


@dataclass(frozen=True)
class Thresholds:
    """A policy's band: auto-approve at or above, auto-decline at or below, a person between."""

    auto_approve_min: int
    auto_decline_max: int


@cache
def thresholds(version: str) -> Thresholds | None:
    """The band of routing policy `version`, or None when no such policy is shipped."""
    path = POLICIES_DIR / f"{version}.json"
    if not VERSION_PATTERN.fullmatch(version) or not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Thresholds(int(data["auto_approve_min"]), int(data["auto_decline_max"]))
