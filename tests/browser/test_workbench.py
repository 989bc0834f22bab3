"""The workbench in Debian's chromium against a real stack: four workers, the projector and the
gateway as processes over the real Kafka and PostgreSQL; web/tests/e2e.mjs drives the browser
(playwright-core) through the screens and saves a screenshot of each under web/test-artifacts/."""

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
    "projector": "services.gateway.projector.main",
    "gateway": "services.gateway.main",
}
PORT_VARIABLE = {"projector": "GATEWAY_PROJECTOR_HTTP_PORT", "gateway": "GATEWAY_HTTP_PORT"}


@pytest.fixture(scope="module")
def gateway_url(
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The whole stack as processes; the gateway's URL once every process is ready."""
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the workbench is not built: run scripts/bootstrap")
    root = tmp_path_factory.mktemp("workbench")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": module_topic_prefix,
        "DATABASE_URL": module_database_url,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(root / "storage"),
        "INGEST_STATE_DIR": str(root / "ingest-state"),
        "ENVIRONMENT": "test",
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_JWT_SECRET": "workbench-browser-test-secret-0123456789abcdef",
        "GATEWAY_ADMIN_USERNAME": ADMIN[0],
        "GATEWAY_ADMIN_PASSWORD": ADMIN[1],
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
    }
    run_async(lambda: migrate(GatewaySettings(database_url=module_database_url)))
    spawned: dict[str, supervisor.Spawned] = {}
    ready: dict[str, str] = {}
    try:
        for name, module in PROCESSES.items():
            port = free_port()
            variable = PORT_VARIABLE.get(name, f"{name.upper()}_HTTP_PORT")
            argv = [sys.executable, "-m", module]
            log = root / f"{name}.log"
            own = {**env, variable: str(port)}
            spawned[name] = supervisor.spawn(argv, log, env=own, cwd=PROJECT)
            ready[name] = f"http://127.0.0.1:{port}"
        for name, url in ready.items():
            health = f"{url}/health/ready"
            if not supervisor.wait_until(lambda health=health: answers(health), timeout=120):
                pytest.fail(f"{name} never became ready:\n{supervisor.tail(root / f'{name}.log')}")
        yield ready["gateway"]
    finally:
        for process in spawned.values():
            supervisor.stop(process)


def test_people_work_a_tape_through_the_workbench_in_chromium(
    gateway_url: str, tmp_path: Path
) -> None:
    """Log in, upload a tape and start a run, watch it complete, download a report, bulk-acknowledge
    exceptions, open an exception and a loan, the admin screens; a sales-team user sees only its
    team's runs; every screen passes axe (no serious or critical finding) and runs under the CSP."""
    node = shutil.which("node")
    assert node, "node is missing: run scripts/bootstrap"
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/bootstrap"
    tape = tmp_path / "tape.csv"
    generate_tape(tape, loans=60, seed=14, bad_share=0.3)
    ARTEFACTS.mkdir(exist_ok=True)
    done = subprocess.run(
        [node, "tests/e2e.mjs"],
        cwd=WEB,
        env={
            **os.environ,
            "BASE_URL": gateway_url,
            "ADMIN_USER": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "TAPE": str(tape),
            "ARTEFACTS": str(ARTEFACTS),
            "CHROMIUM": str(CHROMIUM),
        },
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = f"{done.stdout[-10000:]}\n{done.stderr[-6000:]}"
    assert done.returncode == 0, f"browser test failed:\n{output}"
    for screen in ("login", "runs", "run-detail", "exceptions", "exception-detail", "loan"):
        assert (ARTEFACTS / f"{screen}.png").stat().st_size > 0
