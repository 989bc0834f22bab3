"""Where a user's files live and how paths are checked (pure)."""

from uuid import uuid4

import pytest

from services.gateway.errors import BadRequest
from services.gateway.files.inputs import folder_for_run, relative_path, root_of
from services.gateway.identity.principal import Principal

ANALYST = Principal(uuid4(), "a", "analyst", None)
SALES = Principal(uuid4(), "s", "sales_team", "team-a")


def test_a_sales_team_user_is_rooted_in_its_team_folder() -> None:
    assert root_of(SALES) == "inputs/teams/team-a"
    assert root_of(ANALYST) == "inputs"


def test_a_run_folder_is_named_relative_to_the_inputs_area() -> None:
    assert folder_for_run(SALES, "2026-11-23") == "teams/team-a/2026-11-23"
    assert folder_for_run(SALES, "") == "teams/team-a"
    assert folder_for_run(ANALYST, "a/b/") == "a/b"
    assert folder_for_run(ANALYST, "") == ""


@pytest.mark.parametrize(
    "path", ["..", "../x", "/abs", "a/../../b", "%2e%2e/x", "%252e%252e/x", "a\\b", "C:/x", "a\x00"]
)
def test_paths_that_could_leave_the_root_are_refused(path: str) -> None:
    with pytest.raises(BadRequest):
        relative_path(path)


def test_harmless_paths_are_normalised() -> None:
    assert relative_path("./a//b/") == "a/b"
