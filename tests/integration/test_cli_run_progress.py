"""`loan-engine run --wait` and `runs wait` say every event of their run once, in log order, on
the real broker, however far the run got before the follower started reading `runs.v1`.

The orderings are injected, not timed: the run's events are published with the request (a run
faster than the follower's start), by the follower's own catch-up (a run that moves while the
follower reads the log up to its end), or after it (the live case). `run` has said the run was
requested in its own words, so the request event is not said again; stdout stays the one result.
"""

import asyncio
import json
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from contracts.runs import RunRequested
from contracts.topics import RUNS
from services.cli import pipeline
from services.cli.client import CliSettings, RunLog, describe
from services.cli.main import app
from services.common.kafka import KafkaPublisher
from tests.unit.gateway.gateway_events import RunScenario

pytestmark = pytest.mark.integration

FOLDER = "progress"


@pytest.fixture
def cli_env(kafka_bootstrap_servers: str, module_topic_prefix: str) -> dict[str, str]:
    """The environment of a CLI call on this module's own topics."""
    return {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers, "TOPIC_PREFIX": module_topic_prefix}


async def publish(settings: CliSettings, events: list[Any]) -> None:
    async with KafkaPublisher(settings) as publisher:
        for event in events:
            await publisher.publish(
                RUNS, str(event.run_id), event, {"event-type": event.event_type}
            )


def pipeline_events(run_id: UUID) -> list[Any]:
    """What the pipeline publishes after the request: started, ingested, reports, completed."""
    return RunScenario(run_id=run_id, folder=FOLDER, requested=False).run_events()


def follower_lines(stderr: str, run_id: UUID) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"run {run_id}")]


def requested_run_id(stderr: str) -> UUID:
    first = next(line for line in stderr.splitlines() if line.endswith(f"inputs/{FOLDER}"))
    return UUID(first.split()[1])


def assert_said_once_in_order(stderr: str, run_id: UUID) -> None:
    expected = [
        f"run {run_id} requested over inputs/{FOLDER}",
        *(f"run {run_id}: {describe(event)}" for event in pipeline_events(run_id)),
    ]
    assert follower_lines(stderr, run_id) == expected, stderr
    assert f"run {run_id}: started (attempt 1): reading folder '{FOLDER}'" in expected


def assert_completed(stdout: str, run_id: UUID) -> None:
    [line] = stdout.splitlines()  # the result, and nothing else
    result = json.loads(line)
    assert (result["run_id"], result["status"]) == (str(run_id), "completed")
    assert result["total_loans"] == 12


def test_a_run_that_ends_before_the_follower_starts_is_still_told_event_by_event(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = pipeline.request

    async def request_then_run(settings: CliSettings, run_id: UUID, *args: Any) -> None:
        await requested(settings, run_id, *args)
        await publish(settings, pipeline_events(run_id))

    monkeypatch.setattr(pipeline, "request", request_then_run)

    result = CliRunner().invoke(
        app, ["run", "--folder", FOLDER, "--wait", "60", "--json"], env=cli_env
    )

    assert result.exit_code == 0, result.stderr
    run_id = requested_run_id(result.stderr)
    assert_said_once_in_order(result.stderr, run_id)
    assert_completed(result.stdout, run_id)


@pytest.mark.parametrize("moment", ["before its catch-up reads on", "after its catch-up"])
def test_events_published_once_the_follower_has_started_are_each_said_once_in_order(
    moment: str, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = pipeline.request
    catch_up = RunLog.catch_up
    run_ids: list[UUID] = []

    async def request_only(settings: CliSettings, run_id: UUID, *args: Any) -> None:
        await requested(settings, run_id, *args)
        run_ids.append(run_id)

    async def run_moves_once_the_follower_started(log: RunLog) -> Any:
        # The run goes its whole way while the follower catches up, or once it follows live.
        if moment == "after its catch-up":
            caught_up = await catch_up(log)
            await publish(log.settings, pipeline_events(run_ids[0]))
            return caught_up
        await publish(log.settings, pipeline_events(run_ids[0]))
        return await catch_up(log)

    monkeypatch.setattr(pipeline, "request", request_only)
    monkeypatch.setattr(RunLog, "catch_up", run_moves_once_the_follower_started)

    result = CliRunner().invoke(
        app, ["run", "--folder", FOLDER, "--wait", "60", "--json"], env=cli_env
    )

    assert result.exit_code == 0, result.stderr
    run_id = requested_run_id(result.stderr)
    assert run_ids == [run_id]
    assert_said_once_in_order(result.stderr, run_id)
    assert_completed(result.stdout, run_id)


def test_runs_wait_tells_the_whole_history_of_a_run_already_in_the_log(
    cli_env: dict[str, str],
) -> None:
    scenario = RunScenario(folder=FOLDER)
    events = scenario.run_events()
    assert isinstance(events[0], RunRequested)
    settings = CliSettings(
        kafka_bootstrap_servers=cli_env["KAFKA_BOOTSTRAP_SERVERS"],
        topic_prefix=cli_env["TOPIC_PREFIX"],
    )
    asyncio.run(publish(settings, events))

    result = CliRunner().invoke(
        app, ["runs", "wait", str(scenario.run_id), "--timeout", "60", "--json"], env=cli_env
    )

    assert result.exit_code == 0, result.stderr
    expected = [f"run {scenario.run_id}: {describe(event)}" for event in events]
    assert expected[0] == f"run {scenario.run_id}: requested"
    assert follower_lines(result.stderr, scenario.run_id) == expected, result.stderr
    assert_completed(result.stdout, scenario.run_id)
