"""The stack's Kafka: jars from Maven Central, KRaft storage formatted once, one combined node."""

import asyncio
import base64
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from services.cli.stack import ports, supervisor
from services.cli.stack.errors import DownloadFailed, MissingTool, StartFailed
from services.cli.stack.settings import StackSettings

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
"""

UNREACHABLE_MARKERS = (
    "Could not transfer",
    "UnknownHostException",
    "Connection refused",
    "Network is unreachable",
    "Connect to repo",
    "Could not resolve dependencies",
    "timed out",
)


def render_server_properties(
    port: int, controller_port: int, log_dir: Path, host: str = "127.0.0.1"
) -> str:
    """server.properties of one combined broker+controller node for local development."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Bootstrap servers plus `format --standalone` (never `controller.quorum.voters` too:
        # that combination is rejected by the storage tool).
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        # A fresh node's first consumer group waits on __consumer_offsets: keep it small.
        "offsets.topic.num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Topics come from the registry with their partitions and retention, never by accident.
        "auto.create.topics.enable": "false",
        "num.partitions": "6",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def new_cluster_id(draw: Callable[[int], bytes] = os.urandom) -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).

    Like Kafka's own `Uuid.randomUuid()`, an id that would begin with `-` is drawn again: the
    storage tool's argument parser would read it as an option (one id in 64 does).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(draw(16)).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def libs_dir(settings: StackSettings) -> Path:
    """The cached jar folder for the configured Kafka version."""
    return settings.cache_dir / f"kafka-{settings.kafka_version}" / "libs"


def jars_present(libs: Path, version: str) -> bool:
    """Whether the cache already holds the broker, server and tools jars of `version`."""
    wanted = (
        f"kafka_2.13-{version}.jar",
        f"kafka-server-{version}.jar",
        f"kafka-tools-{version}.jar",
    )
    return all((libs / jar).is_file() for jar in wanted)


def java_path(settings: StackSettings) -> str:
    """The java executable, or a MissingTool error saying what to install."""
    found = shutil.which(settings.java_command)
    if found is None:
        raise MissingTool(
            "Java 17 or newer is needed to run Kafka and was not found; install it with "
            "`apt-get install -y openjdk-17-jre-headless` (or set STACK_JAVA_COMMAND)"
        )
    return found


def resolve_jars(settings: StackSettings, progress: Progress) -> Path:
    """The Kafka jar folder, resolved from Maven Central into the cache when missing."""
    libs = libs_dir(settings)
    if jars_present(libs, settings.kafka_version):
        return libs
    maven = shutil.which(settings.maven_command)
    if maven is None:
        raise MissingTool(
            "Maven is needed once to fetch the Kafka jars and was not found; install it with "
            "`apt-get install -y maven` (or set STACK_MAVEN_COMMAND)"
        )
    pom = settings.project_dir / "infra" / "kafka" / "pom.xml"
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    progress(f"resolving Kafka {settings.kafka_version} jars from Maven Central into {libs}")
    result = subprocess.run(
        [
            maven,
            "-q",
            "-B",
            "-f",
            str(pom),
            f"-Dkafka.version={settings.kafka_version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not jars_present(staging, settings.kafka_version):
        output = (result.stdout + result.stderr).strip()
        if any(marker in output for marker in UNREACHABLE_MARKERS):
            raise DownloadFailed(
                "Maven Central is unreachable, so the Kafka jars cannot be fetched; check the "
                f"network or Maven's proxy settings. Maven said:\n{output[-2000:]}"
            )
        raise DownloadFailed(f"Maven could not resolve the Kafka jars:\n{output[-2000:]}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


def class_archive(settings: StackSettings, java: str) -> Path:
    """The broker's class-data-sharing archive for this Kafka version and this very JVM.

    Measured on the 2-core machine, a broker mapping its classes from the archive was ready in
    about half the CPU time of one loading them from the jars (2.9 s against 5.1 s, loaded).
    """
    binary = Path(java).resolve()
    key = hashlib.sha256(f"{binary}:{binary.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    return libs_dir(settings).parent / f"kafka-classes-{key}.jsa"


def class_sharing_options(java: str, libs: Path, archive: Path, *, dump: bool) -> list[str]:
    """Map the broker's classes from `archive`; without one, have the JVM write it at its exit.

    The JVM writes a new archive beside the final name; it becomes the archive only once a JVM
    has mapped it (`-Xshare:on` fails on a file cut short by a kill), so a broken file is never
    used. A stale archive (another JDK) is refused by the JVM, which then loads from the jars.
    """
    fresh = archive.with_suffix(".new")
    if not archive.is_file() and fresh.is_file():
        check = subprocess.run(
            [java, f"-XX:SharedArchiveFile={fresh}", "-Xshare:on", "-cp", f"{libs}/*", "-version"],
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            fresh.replace(archive)
        else:
            fresh.unlink(missing_ok=True)
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto"]
    return [f"-XX:ArchiveClassesAtExit={fresh}"] if dump else []


def kafka_dir(settings: StackSettings) -> Path:
    """The broker's folder in the stack state (config and data)."""
    return settings.state / "kafka"


def prepare(settings: StackSettings, libs: Path, progress: Progress) -> Path:
    """Write the config and format KRaft storage once; return the server.properties path."""
    home = kafka_dir(settings)
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "server.properties"
    config.write_text(
        render_server_properties(settings.kafka_port, settings.kafka_controller_port, data),
        encoding="utf-8",
    )
    (home / "log4j.properties").write_text(LOG4J_PROPERTIES, encoding="utf-8")
    if (data / "meta.properties").exists():
        return config
    progress(f"formatting KRaft storage in {data}")
    java = java_path(settings)
    result = subprocess.run(
        [
            java,
            *class_sharing_options(java, libs, class_archive(settings, java), dump=False),
            "-cp",
            f"{libs}/*",
            f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            new_cluster_id(),
            "-c",
            str(config),
            "--standalone",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StartFailed(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    return config


def start(settings: StackSettings, progress: Progress) -> supervisor.Spawned:
    """Resolve jars, format storage and start the node; wait until it answers."""
    java = java_path(settings)
    ports.require_free(settings.kafka_port, "Kafka", "STACK_KAFKA_PORT")
    ports.require_free(
        settings.kafka_controller_port, "the Kafka controller", "STACK_KAFKA_CONTROLLER_PORT"
    )
    libs = resolve_jars(settings, progress)
    config = prepare(settings, libs, progress)
    log_file = settings.logs_dir / "kafka.log"
    progress(f"starting Kafka on {settings.kafka_bootstrap_servers}")
    spawned = supervisor.spawn(
        [
            java,
            f"-Xmx{settings.kafka_heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            *class_sharing_options(java, libs, class_archive(settings, java), dump=True),
            f"-Dlog4j.configuration=file:{config.parent / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(config),
        ],
        log_file,
    )
    ready = supervisor.wait_until(
        lambda: not supervisor.is_alive(spawned) or healthy(settings.kafka_bootstrap_servers),
        settings.startup_timeout,
    )
    if not ready or not supervisor.is_alive(spawned):
        supervisor.stop(spawned)
        raise StartFailed(
            f"Kafka did not become ready on {settings.kafka_bootstrap_servers}; "
            f"last lines of {log_file}:\n{supervisor.tail(log_file)}"
        )
    return spawned


def healthy(bootstrap_servers: str, timeout: float = 5.0) -> bool:
    """Whether the broker answers a metadata request."""
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    if not ports.port_is_open(int(port), host or "127.0.0.1"):
        return False
    return asyncio.run(_answers(bootstrap_servers, timeout))


async def _answers(bootstrap_servers: str, timeout: float) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not healthy", which is the answer
        return False
    finally:
        await admin.close()
