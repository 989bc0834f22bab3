"""What an audit event says about a request: outcome, action, target, masking."""

from uuid import UUID

import pytest

from contracts.audit import mask_text
from services.gateway.audit.domain import action_of, outcome_of, target_of
from services.gateway.audit.recorder import cli_event


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "success"), (201, "success"), (202, "success"), (302, "success"), (401, "denied")]
    + [(403, "denied"), (404, "failed"), (409, "failed"), (422, "failed"), (500, "error")],
)
def test_the_outcome_follows_the_status_answered(status: int, outcome: str) -> None:
    assert outcome_of(status) == outcome


def test_every_e_mail_address_in_text_is_masked() -> None:
    text = "call jane.doe+x@bank.example.co.uk or JOE@Example.com today"
    assert mask_text(text) == "call j***@*** or J***@*** today"


def test_the_action_is_the_route_name_with_its_action_parameter() -> None:
    assert action_of("exception_action", "POST", {"action": "acknowledge"}) == (
        "exception_action.acknowledge"
    )
    assert action_of("create_user", "POST", {}) == "create_user"
    assert action_of(None, "DELETE", {}) == "delete.unrouted"


def test_the_target_names_ids_from_the_path_and_the_answer_and_never_a_secret() -> None:
    run_id = UUID(int=7)
    target = target_of(
        {"run_id": run_id, "action": "retry", "password": "hunter2"},
        {
            "id": "u-1",
            "username": "ann@example.com",
            "access_token": "eyJ...",
            "email": "ann@example.com",
            "notes": "free text",
        },
    )
    assert target == {"run_id": str(run_id), "id": "u-1", "username": "a***@***"}


def test_an_operator_command_is_audited_as_the_cli_with_masked_target() -> None:
    event = cli_event("admin.create_user", {"username": "sam@example.com"}, "success")
    assert event.source == "cli"
    assert event.actor_role == "operator"
    assert event.target == {"username": "s***@***"}


def test_a_nul_character_in_a_target_becomes_storable_text() -> None:
    assert target_of({"path": "a\x00b"}, {"username": "x\x00"}) == {
        "path": "a\ufffdb",
        "username": "x\ufffd",
    }
