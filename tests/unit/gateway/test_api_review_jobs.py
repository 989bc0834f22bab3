"""The API process serves requests; the review jobs run in a process of their own unless a
single-process deployment asks the API to run them too (GATEWAY_REVIEW_JOBS_ENABLED)."""

from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import BaseModel

from contracts.topics import Topic
from services.common.storage import LocalStorage
from services.gateway.app import create_app
from services.gateway.review.jobs import ReviewJobs
from services.gateway.settings import GatewaySettings
from tests.net import free_port


class Published:
    """A publisher that keeps what it is given (no broker in a unit test)."""

    def __init__(self) -> None:
        self.events: list[tuple[Topic, str, BaseModel, dict[str, str] | None]] = []

    async def publish(
        self, topic: Topic, key: str, event: BaseModel, headers: dict[str, str] | None = None
    ) -> None:
        self.events.append((topic, key, event, headers))


def api(tmp_path: Path, **overrides: object) -> FastAPI:
    """The app over a database nobody answers at (the jobs' ticks fail and are logged)."""
    settings = GatewaySettings(
        database_url=f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none",
        review_job_seconds=60,
        **overrides,  # type: ignore[arg-type]
    )
    return create_app(settings, storage=LocalStorage(tmp_path), publisher=Published())


def test_the_review_jobs_are_off_in_the_api_process_by_default() -> None:
    assert GatewaySettings().review_jobs_enabled is False


@pytest.mark.parametrize(("enabled", "runs_jobs"), [(None, False), (False, False), (True, True)])
async def test_the_api_runs_the_review_jobs_only_when_a_single_process_deployment_asks(
    tmp_path: Path, enabled: bool | None, runs_jobs: bool
) -> None:
    overrides = {} if enabled is None else {"review_jobs_enabled": enabled}
    app = api(tmp_path, **overrides)
    async with LifespanManager(app):
        assert isinstance(app.state.review_jobs, ReviewJobs) is runs_jobs
