"""The fields SPEC §7 added to existing events are optional and left off the wire when unset,
so an event that does not use them serialises exactly as before (a consumer that forbids
unknown fields still reads it)."""

import json
from datetime import UTC, datetime
from uuid import UUID

from contracts.codec import decode, encode
from contracts.loans import RowRef, RunParams
from contracts.runs import CellCorrection, ReprocessEdits, RunReprocessRequested
from tests.factories import run_params

RUN = UUID("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
AT = datetime(2026, 12, 6, tzinfo=UTC)


def reprocess(**extra: object) -> RunReprocessRequested:
    fields: dict[str, object] = {
        "event_id": RUN,
        "run_id": RUN,
        "occurred_at": AT,
        "producer": "gateway",
        "params": run_params(),
        "parent_run_id": RUN,
        "created_at": AT,
    }
    return RunReprocessRequested.model_validate({**fields, **extra})


def test_run_params_without_a_rule_set_version_have_the_old_shape() -> None:
    assert set(json.loads(encode(run_params()))) == {"irr_target", "pdate", "sales_team_id"}


def test_a_plain_reprocess_request_has_the_old_shape() -> None:
    body = json.loads(encode(reprocess()))
    assert "edits" not in body and "apply_corrections" not in body


def test_a_reprocess_with_edits_round_trips() -> None:
    edits = ReprocessEdits(
        corrections=(
            CellCorrection(
                source_file="t.csv", row=2, field="ltv_ratio", value="85", correction_id=RUN
            ),
        ),
        rows=(RowRef(source_file="t.csv", row=2),),
    )
    params = run_params().model_copy(update={"rule_set_version": "2026.12.1"})
    event = reprocess(apply_corrections=True, edits=edits, params=params)
    again = decode(encode(event), RunReprocessRequested)
    assert again == event
    assert isinstance(again.params, RunParams) and again.params.rule_set_version == "2026.12.1"
