"""SLA metrics of the review desk (SPEC §8), pure: how the cases opened in a window fared
against their deadlines, overall and by priority (`GET /review/sla-metrics`).

- `decided`: a person decided the case (an override waiting for its second person counts: the
  analyst's decision is in); `on_time` when decided at or before the deadline, `late` after it.
- `open_breached`: still undecided and past the deadline at the time of asking.
- `breaches` = `late` + `open_breached`; `on_time_rate` = `on_time` / (`decided` +
  `open_breached`), the share of cases whose SLA outcome is known that met it (null when none is).
- `warnings`, `escalations`: the SLA job's marks on these cases.
- time to decision, from opening to the decision, in whole seconds: mean, median, 90th and 95th
  percentiles (nearest rank) and max; null when nothing is decided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from contracts.reviews import PRIORITIES, Priority

RATE = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class MeasuredCase:
    """What the metrics need of a case."""

    priority: Priority
    opened_at: datetime
    sla_deadline: datetime
    decided_at: datetime | None
    warned: bool = False
    escalated: bool = False


@dataclass(frozen=True, slots=True)
class Durations:
    """Time to decision, in seconds."""

    mean: int
    p50: int
    p90: int
    p95: int
    max: int


@dataclass(frozen=True, slots=True)
class SlaFigures:
    """The SLA figures of a set of cases."""

    cases: int
    decided: int
    on_time: int
    late: int
    open: int
    open_breached: int
    breaches: int
    on_time_rate: Decimal | None
    warnings: int
    escalations: int
    time_to_decision_seconds: Durations | None


def percentile(ordered: Sequence[int], share: int) -> int:
    """The nearest-rank percentile (`share` in percent) of sorted values."""
    rank = max(1, math.ceil(share * len(ordered) / 100))
    return ordered[rank - 1]


def durations(seconds: Iterable[int]) -> Durations | None:
    """Mean, percentiles and max of durations (None when there are none)."""
    ordered = sorted(seconds)
    if not ordered:
        return None
    mean = (Decimal(sum(ordered)) / len(ordered)).quantize(Decimal(1), ROUND_HALF_EVEN)
    return Durations(
        mean=int(mean),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p95=percentile(ordered, 95),
        max=ordered[-1],
    )


def figures(cases: Sequence[MeasuredCase], now: datetime) -> SlaFigures:
    """The SLA figures of the cases at `now`."""
    decided = [(case, case.decided_at) for case in cases if case.decided_at is not None]
    on_time = sum(1 for case, at in decided if at <= case.sla_deadline)
    still_open = [case for case in cases if case.decided_at is None]
    open_breached = sum(1 for case in still_open if now >= case.sla_deadline)
    known = len(decided) + open_breached
    rate = (Decimal(on_time) / known).quantize(RATE, ROUND_HALF_EVEN) if known else None
    return SlaFigures(
        cases=len(cases),
        decided=len(decided),
        on_time=on_time,
        late=len(decided) - on_time,
        open=len(still_open),
        open_breached=open_breached,
        breaches=len(decided) - on_time + open_breached,
        on_time_rate=rate,
        warnings=sum(1 for case in cases if case.warned),
        escalations=sum(1 for case in cases if case.escalated),
        time_to_decision_seconds=durations(
            int((at - case.opened_at).total_seconds()) for case, at in decided
        ),
    )


def by_priority(cases: Sequence[MeasuredCase], now: datetime) -> dict[Priority, SlaFigures]:
    """The figures of each priority level (at opening), every level present."""
    return {
        level: figures([case for case in cases if case.priority == level], now)
        for level in PRIORITIES
    }
