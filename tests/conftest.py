"""Session infrastructure for integration tests: a real Kafka broker, PostgreSQL and Redis.

Each is found in this order: the environment (`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`,
`REDIS_URL`); else testcontainers when a Docker engine answers; else the project's own local stack
(started through `services.cli.stack`, reused when already up, stopped at the end if this session
started it) or, for Redis, Debian's `redis-server` started for the session on a free loopback port.
Every fixture here is lazy: a unit test that asks for none of them starts nothing.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pytest

from tests.net import free_port, stop

T = TypeVar("T")


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in another thread.

    Session fixtures here are synchronous so any test (sync or async) can use them; a private
    thread keeps them clear of the loop pytest-asyncio runs the tests on.
    """

    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def docker_engine_answers(timeout: float = 1.0) -> bool:
    """Whether a Docker engine answers `/_ping` quickly (a client alone is not enough)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parts = urlsplit(host)
    try:
        if parts.scheme == "unix":
            if not Path(parts.path).exists():
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(parts.path)
        elif parts.scheme in ("tcp", "http") and parts.hostname:
            sock = socket.create_connection((parts.hostname, parts.port or 2375), timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line + b" "
    except OSError:
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    """Whether testcontainers can be used this session."""
    return docker_engine_answers()


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(docker_available: bool) -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this test session."""
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        yield from_env
        return
    if docker_available:
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    from services.cli.stack import infra

    with infra.kafka_for_tests() as bootstrap_servers:
        yield bootstrap_servers


@pytest.fixture(scope="session")
def _postgres_server_url(docker_available: bool) -> Iterator[str]:
    """A SQLAlchemy asyncpg URL of a PostgreSQL server whose user may create databases."""
    from_env = os.environ.get("DATABASE_URL")
    if from_env:
        yield from_env
        return
    if docker_available:
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:15", driver="asyncpg") as container:
            yield container.get_connection_url()
        return
    from services.cli.stack import infra

    with infra.postgres_for_tests() as url:
        yield url


def redis_answers(port: int) -> bool:
    """Whether a Redis server on loopback answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(docker_available: bool, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real Redis server for this test session (`redis://host:port`)."""
    from_env = os.environ.get("REDIS_URL")
    if from_env:
        yield from_env
        return
    if docker_available:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        # The Redis module of testcontainers needs redis-py; a log line is enough to wait on.
        container = (
            DockerContainer("redis:7")
            .with_exposed_ports(6379)
            .waiting_for(LogMessageWaitStrategy("Ready to accept connections"))
        )
        with container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(6379)
            yield f"redis://{host}:{port}"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: run scripts/bootstrap, or set REDIS_URL")
    directory = tmp_path_factory.mktemp("redis")
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    with (directory / "redis.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not redis_answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: see {directory / 'redis.log'}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(server)


@pytest.fixture(scope="session")
def database_url(_postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test session (dropped at the end), as a SQLAlchemy asyncpg URL."""
    from services.cli.stack import databases

    name = f"test_{uuid.uuid4().hex[:12]}"
    url = run_async(lambda: databases.create_database(_postgres_server_url, name))
    try:
        yield url
    finally:
        run_async(lambda: databases.drop_database(_postgres_server_url, name))


@pytest.fixture(scope="module")
def module_database_url(_postgres_server_url: str) -> Iterator[str]:
    """A database of one test module's own, for tests whose services bootstrap their first admin
    (an admin made in the session's database would keep every later module's from being made)."""
    from services.cli.stack import databases

    name = f"test_module_{uuid.uuid4().hex[:12]}"
    url = run_async(lambda: databases.create_database(_postgres_server_url, name))
    try:
        yield url
    finally:
        run_async(lambda: databases.drop_database(_postgres_server_url, name))


@pytest.fixture(scope="session")
def topic_prefix(kafka_bootstrap_servers: str) -> Iterator[str]:
    """A topic prefix unique to this session, with every registry topic created under it."""
    from services.cli.stack import topics

    prefix = f"test-{uuid.uuid4().hex[:12]}."
    names = run_async(lambda: topics.ensure_topics(kafka_bootstrap_servers, prefix))
    try:
        yield prefix
    finally:
        run_async(lambda: topics.delete_topics(kafka_bootstrap_servers, names))


@pytest.fixture(scope="module")
def module_topic_prefix(kafka_bootstrap_servers: str, topic_prefix: str) -> Iterator[str]:
    """Topics of one test module's own, for tests that read a topic from its beginning."""
    from services.cli.stack import topics

    prefix = f"{topic_prefix}{uuid.uuid4().hex[:8]}."
    names = run_async(lambda: topics.ensure_topics(kafka_bootstrap_servers, prefix))
    try:
        yield prefix
    finally:
        run_async(lambda: topics.delete_topics(kafka_bootstrap_servers, names))


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    """An empty local storage root for one test."""
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto in server mode) on loopback, with test credentials."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
