"""The workbench's credit review screens in Debian's chromium against a real stack that scores
loans: the four workers, scoring (a small model trained at start into a registry of its own), the
projector and the gateway (its review job opening cases every 2 s) as processes over the real
Kafka and PostgreSQL. web/tests/review-e2e.mjs drives the browser through the review queue, the
case view, a decision, an override and its approval by a second person, the notification that
tells the analyst, and saves a screenshot and the axe findings of each screen under
web/test-artifacts/."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.stack import supervisor
from services.gateway.db import migrate
from services.gateway.settings import GatewaySettings
from services.ingest.tapegen import generate_tape
from tests.browser.web import ARTEFACTS, PROJECT, WEB
from tests.conftest import run_async
from tests.net import answers, free_port

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = ("admin", "admin-password-1")
PROCESSES = {
    "ingest": "services.ingest.main",
    "rules": "services.rules.main",
    "pricing": "services.pricing.main",
    "reporting": "services.reporting.main",
    "scoring": "services.scoring.main",
    "projector": "services.gateway.projector.main",
    "gateway": "services.gateway.main",
}
PORT_VARIABLE = {"projector": "GATEWAY_PROJECTOR_HTTP_PORT", "gateway": "GATEWAY_HTTP_PORT"}
# Scoring is ready once its model is: training one (MLflow's store created first) takes minutes
# on a loaded machine, the other processes seconds.
READY_SECONDS = {"scoring": 480}
SCREENS = (
    "review-queue",
    "review-case",
    "review-case-decided",
    "review-case-override-pending",
    "approvals",
    "review-case-override-approved",
    "notifications",
)


@pytest.fixture(scope="module")
def scoring_gateway_url(
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The whole stack with scoring as processes; the gateway's URL once every one is ready."""
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the workbench is not built: run scripts/bootstrap")
    root = tmp_path_factory.mktemp("review-workbench")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": module_topic_prefix,
        "DATABASE_URL": module_database_url,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(root / "storage"),
        "INGEST_STATE_DIR": str(root / "ingest-state"),
        "SCORING_STATE_DIR": str(root / "scoring-state"),
        "SCORING_BOOTSTRAP_SAMPLES": "2000",
        "ENVIRONMENT": "test",
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_JWT_SECRET": "review-browser-test-secret-0123456789abcdef",
        "GATEWAY_ADMIN_USERNAME": ADMIN[0],
        "GATEWAY_ADMIN_PASSWORD": ADMIN[1],
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
        "GATEWAY_REVIEW_JOB_SECONDS": "2",
    }
    run_async(lambda: migrate(GatewaySettings(database_url=module_database_url)))
    spawned: dict[str, supervisor.Spawned] = {}
    ready: dict[str, str] = {}
    try:
        for name, module in PROCESSES.items():
            port = free_port()
            variable = PORT_VARIABLE.get(name, f"{name.upper()}_HTTP_PORT")
            own = {**env, variable: str(port)}
            argv = [sys.executable, "-m", module]
            spawned[name] = supervisor.spawn(argv, root / f"{name}.log", env=own, cwd=PROJECT)
            ready[name] = f"http://127.0.0.1:{port}"
        for name, url in ready.items():
            health = f"{url}/health/ready"
            timeout = READY_SECONDS.get(name, 120)
            if not supervisor.wait_until(lambda health=health: answers(health), timeout=timeout):
                pytest.fail(f"{name} never became ready:\n{supervisor.tail(root / f'{name}.log')}")
        yield ready["gateway"]
    finally:
        for process in spawned.values():
            supervisor.stop(process)


def test_an_analyst_decides_review_cases_and_a_senior_approves_the_override_in_chromium(
    scoring_gateway_url: str, tmp_path: Path
) -> None:
    """A scored run opens review cases; an analyst works the queue (assign, start), decides one
    case with the model (conditions, one marked fulfilled) and one against it (a short
    justification refused with the API's message, then an override pending); a senior analyst
    approves the override and a waiver; the analyst reads the notification of it; every screen
    passes axe (no serious or critical finding) under the CSP."""
    node = shutil.which("node")
    assert node, "node is missing: run scripts/bootstrap"
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/bootstrap"
    tape = tmp_path / "review-tape.csv"
    generate_tape(tape, loans=120, seed=8, bad_share=0.1)
    ARTEFACTS.mkdir(exist_ok=True)
    done = subprocess.run(
        [node, "tests/review-e2e.mjs"],
        cwd=WEB,
        env={
            **os.environ,
            "BASE_URL": scoring_gateway_url,
            "ADMIN_USER": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "TAPE": str(tape),
            "ARTEFACTS": str(ARTEFACTS),
            "CHROMIUM": str(CHROMIUM),
        },
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = f"{done.stdout[-10000:]}\n{done.stderr[-6000:]}"
    assert done.returncode == 0, f"browser test failed:\n{output}"
    for screen in SCREENS:
        assert (ARTEFACTS / f"{screen}.png").stat().st_size > 0
