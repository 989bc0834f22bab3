"""The loans.scored.v1 wire type agrees with `contracts.scoring`: same bytes, same accept/reject."""

from typing import Any

import msgspec
import orjson
import pytest
from pydantic import ValidationError

from contracts import scoring, wire
from contracts.codec import encode
from tests.unit.gateway.gateway_events import RunScenario
from tests.unit.gateway.review_events import scored_batches


def document() -> dict[str, Any]:
    (batch,) = scored_batches(RunScenario(loans=6, batch_size=6))
    return batch.model_dump(mode="json")


def test_the_wire_type_encodes_every_scored_batch_to_the_contract_s_bytes() -> None:
    for batch in scored_batches(RunScenario(loans=40, batch_size=7)):
        raw = encode(batch)
        assert msgspec.json.encode(msgspec.json.decode(raw, type=wire.ScoredBatch)) == raw


def test_the_wire_types_mirror_the_scoring_contracts_field_order() -> None:
    pairs = (
        (wire.ScoredBatch, scoring.ScoredBatch),
        (wire.LoanScored, scoring.LoanScored),
        (wire.Routing, scoring.Routing),
        (wire.Factor, scoring.Factor),
        (wire.ScoringFeatures, scoring.ScoringFeatures),
    )
    for struct, model in pairs:
        assert struct.__struct_fields__ == tuple(model.model_fields)


def _six_factors(doc: dict[str, Any]) -> None:
    doc["events"][0]["positive_factors"] = [
        {"feature": "credit_score", "description": "d", "value": "1", "contribution": "-0.1"}
    ] * 6


BREAKAGES = {
    "score above 1000": lambda doc: doc["events"][0].update(score=1001),
    "negative score": lambda doc: doc["events"][0].update(score=-1),
    "seq 0": lambda doc: doc["events"][0].update(seq=0),
    "negative batch_seq": lambda doc: doc.update(batch_seq=-1),
    "unknown routing decision": lambda doc: doc["events"][0]["routing"].update(decision="maybe"),
    "unknown trigger": lambda doc: doc["events"][0]["routing"].update(triggers=["whim"]),
    "unknown risk category": lambda doc: doc["events"][0].update(risk_category="extreme"),
    "unknown field": lambda doc: doc["events"][0].update(surprise=1),
    "unknown feature": lambda doc: doc["events"][0]["features"].update(income="1"),
    "six factors": _six_factors,
    "factor without contribution": lambda doc: doc["events"][0]["negative_factors"][0].pop(
        "contribution"
    ),
    "wrong batch type": lambda doc: doc.update(batch_type="loans.priced"),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_the_wire_type_rejects_every_bad_scored_batch_the_contract_rejects(name: str) -> None:
    doc = document()
    assert doc["events"][0]["negative_factors"]
    BREAKAGES[name](doc)
    raw = orjson.dumps(doc)
    with pytest.raises(ValidationError):
        scoring.ScoredBatch.model_validate_json(raw)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=wire.ScoredBatch)
