"""The stack the browser tests drive: four workers, the projector, the review jobs and the gateway
as processes over the real Kafka and PostgreSQL, with topics and a database of the test module's
own."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest

from services.cli.stack import supervisor
from services.gateway.db import migrate
from services.gateway.settings import GatewaySettings
from tests.browser.web import ARTEFACTS, PROJECT, WEB
from tests.conftest import run_async
from tests.net import answers, free_port

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = ("admin", "admin-password-1")
PROCESSES = {
    "ingest": "services.ingest.main",
    "rules": "services.rules.main",
    "pricing": "services.pricing.main",
    "reporting": "services.reporting.main",
    "projector": "services.gateway.projector.main",
    "jobs": "services.gateway.review.main",
    "gateway": "services.gateway.main",
}
SCORING = {"scoring": "services.scoring.main"}
PORT_VARIABLE = {
    "projector": "GATEWAY_PROJECTOR_HTTP_PORT",
    "jobs": "GATEWAY_JOBS_HTTP_PORT",
    "gateway": "GATEWAY_HTTP_PORT",
}
# Scoring is ready once its model is: training one (MLflow's store created first) takes minutes
# on a loaded machine, the other processes seconds.
READY_SECONDS = {"scoring": 480}


@dataclass(frozen=True)
class Workbench:
    """A running stack: the gateway's URL and the storage its services share."""

    url: str
    storage_root: Path


@contextmanager
def running_workbench(
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    database_url: str,
    root: Path,
    *,
    scoring: bool = False,
    extra_env: Mapping[str, str] = MappingProxyType({}),
) -> Iterator[Workbench]:
    """The whole stack as processes (with the scoring service, training a small model, if
    `scoring`), once every process is ready; stopped on exit."""
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("the workbench is not built: run scripts/bootstrap")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": topic_prefix,
        "DATABASE_URL": database_url,
        "STORAGE_TYPE": "local",
        "STORAGE_ROOT": str(root / "storage"),
        "INGEST_STATE_DIR": str(root / "ingest-state"),
        "SCORING_STATE_DIR": str(root / "scoring-state"),
        "SCORING_BOOTSTRAP_SAMPLES": "2000",
        "ENVIRONMENT": "test",
        "PYTHONUNBUFFERED": "1",
        "GATEWAY_JWT_SECRET": "workbench-browser-test-secret-0123456789abcdef",
        "GATEWAY_ADMIN_USERNAME": ADMIN[0],
        "GATEWAY_ADMIN_PASSWORD": ADMIN[1],
        "GATEWAY_RATE_LIMIT_ENABLED": "false",
        **extra_env,
    }
    run_async(lambda: migrate(GatewaySettings(database_url=database_url)))
    processes = {**PROCESSES, **SCORING} if scoring else PROCESSES
    spawned: dict[str, supervisor.Spawned] = {}
    ready: dict[str, str] = {}
    try:
        for name, module in processes.items():
            port = free_port()
            variable = PORT_VARIABLE.get(name, f"{name.upper()}_HTTP_PORT")
            argv = [sys.executable, "-m", module]
            own = {**env, variable: str(port)}
            spawned[name] = supervisor.spawn(argv, root / f"{name}.log", env=own, cwd=PROJECT)
            ready[name] = f"http://127.0.0.1:{port}"
        for name, url in ready.items():
            health = f"{url}/health/ready"
            timeout = READY_SECONDS.get(name, 120)
            if not supervisor.wait_until(lambda health=health: answers(health), timeout=timeout):
                pytest.fail(f"{name} never became ready:\n{supervisor.tail(root / f'{name}.log')}")
        yield Workbench(url=ready["gateway"], storage_root=root / "storage")
    finally:
        for process in spawned.values():
            supervisor.stop(process)


@pytest.fixture(scope="module")
def workbench(
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    """The whole stack as processes: the gateway's URL and the storage root, once every process
    is ready."""
    root = tmp_path_factory.mktemp("workbench")
    with running_workbench(
        kafka_bootstrap_servers, module_topic_prefix, module_database_url, root
    ) as running:
        yield running


@pytest.fixture(scope="module")
def gateway_url(workbench: Workbench) -> str:
    """The gateway's URL once every process of the module's stack is ready."""
    return workbench.url


def run_browser_script(
    script: str, base_url: str, tape: Path, timeout: float, **extra_env: str
) -> None:
    """Run one of web/tests/*.mjs in Debian's chromium against `base_url` with `tape`; its
    screenshots and axe findings go to ARTEFACTS. Fails with the script's output if it does."""
    node = shutil.which("node")
    assert node, "node is missing: run scripts/bootstrap"
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/bootstrap"
    ARTEFACTS.mkdir(exist_ok=True)
    done = subprocess.run(
        [node, script],
        cwd=WEB,
        env={
            **os.environ,
            "BASE_URL": base_url,
            "ADMIN_USER": ADMIN[0],
            "ADMIN_PASSWORD": ADMIN[1],
            "TAPE": str(tape),
            "ARTEFACTS": str(ARTEFACTS),
            "CHROMIUM": str(CHROMIUM),
            **extra_env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = f"{done.stdout[-10000:]}\n{done.stderr[-6000:]}"
    assert done.returncode == 0, f"browser test failed:\n{output}"
