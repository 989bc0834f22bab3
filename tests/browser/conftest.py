"""The stack the browser tests drive: four workers, the projector and the gateway as processes over
the real Kafka and PostgreSQL, with topics and a database of the test module's own."""

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.cli.stack import supervisor
from services.gateway.db import migrate
from services.gateway.settings import GatewaySettings
from tests.browser.web import PROJECT, WEB
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
    "gateway": "services.gateway.main",
}
PORT_VARIABLE = {"projector": "GATEWAY_PROJECTOR_HTTP_PORT", "gateway": "GATEWAY_HTTP_PORT"}


@dataclass(frozen=True)
class Workbench:
    """A running stack: the gateway's URL and the storage its services share."""

    url: str
    storage_root: Path


@pytest.fixture(scope="module")
def workbench(
    kafka_bootstrap_servers: str,
    module_topic_prefix: str,
    module_database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Workbench]:
    """The whole stack as processes: the gateway's URL and the storage root, once every process
    is ready."""
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
        yield Workbench(url=ready["gateway"], storage_root=root / "storage")
    finally:
        for process in spawned.values():
            supervisor.stop(process)


@pytest.fixture(scope="module")
def gateway_url(workbench: Workbench) -> str:
    """The gateway's URL once every process of the module's stack is ready."""
    return workbench.url
