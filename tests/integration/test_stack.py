"""The session infrastructure and the local stack, against real processes.

The stack tests run the real `loan-engine stack` commands with their own state folder, free
ports and a Procfile of tiny health servers (one that always crashes, one whose module does not
exist), so they never touch a developer's stack.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import ALL_TOPICS
from services.cli.stack.urls import asyncpg_dsn, database_name

pytestmark = pytest.mark.integration

HEALTH_SERVER = """
import http.server, sys

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path in ("/health", "/health/ready", "/metrics") else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


async def test_session_prefix_has_every_registry_topic_with_its_partitions(
    kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics([t.physical(topic_prefix) for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
    assert partitions == {t.physical(topic_prefix): t.partitions for t in ALL_TOPICS}


async def test_session_database_is_fresh_and_writable(database_url: str) -> None:
    assert database_url.startswith("postgresql+asyncpg://")
    assert database_name(database_url).startswith("test_")
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        await connection.execute("CREATE TABLE probe (id int)")
    finally:
        await connection.close()
    assert tables == 0


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


CRASH_LOOP = "import sys, time; time.sleep(3); sys.exit(1)"
"""The command of a service that runs longer than STACK_START_SECONDS, then crashes."""


CRASHING = (CRASH_LOOP, "sys.exit(3)", "services.no_such_service")
"""Commands of the Procfile's services that crash, each restart a new pid until given up."""


def crash_looping(pid: int) -> bool:
    """Whether `pid` is one of the crashing services (or its gate)."""
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return True  # gone already: it was a passing process
    return any(command in cmdline for command in CRASHING)


@dataclass
class Stack:
    """A stack under test: its folder, environment and ports."""

    state: Path
    environment: dict[str, str]
    ports: dict[str, int]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli.main", "stack", *args],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        result = self.cli("status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def operator(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`loan-engine ARGS` as an operator runs it: an empty environment (PATH and HOME), in a
        folder whose `.env` names only this stack's state folder (the default is `.stack`)."""
        workdir = self.state / "operator"
        workdir.mkdir(exist_ok=True)
        (workdir / ".env").write_text(f"STACK_STATE_DIR={self.state}\n")
        return subprocess.run(
            [sys.executable, "-m", "services.cli.main", *args],
            env={"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]},
            cwd=workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def processes(self) -> dict[str, dict[str, Any]]:
        return {process["name"]: process for process in self.status()["processes"]}

    def recorded_pids(self) -> dict[str, int]:
        recorded = json.loads((self.state / "state.json").read_text())["processes"]
        return {name: value["pid"] for name, value in recorded.items()}

    def postmaster_pid(self) -> int | None:
        pid_file = self.state / "postgres" / "data" / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None

    def process_tree(self, *, database_children: bool = True) -> set[int]:
        """Every live process the stack started: recorded pids, the postmaster, descendants
        (but the crash-looping service, whose pid changes with each restart). Without
        `database_children`, not the postmaster's children: a backend per connection and the
        autovacuum workers come and go."""
        postmaster = self.postmaster_pid()
        pids: set[int] = set()
        for pid in [*self.recorded_pids().values(), postmaster]:
            if pid is None or not psutil.pid_exists(pid):
                continue
            pids.add(pid)
            if pid != postmaster or database_children:
                pids.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        return {pid for pid in pids if not crash_looping(pid)}

    def strays(self) -> list[str]:
        """Processes anywhere on the machine that mention this stack's folder."""
        found = []
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if str(self.state) in cmdline and process.pid != os.getpid():
                found.append(f"{process.pid}: {cmdline}")
        return found


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A stack in a temporary folder on free ports; brought down whatever the tests do."""
    # Not under pytest's private tmp folder: as root the cluster runs as `postgres`, which
    # must reach it (a private parent makes the stack keep the cluster under /var/tmp instead).
    state = Path(tempfile.mkdtemp(prefix="loan-engine-stack-test-"))
    state.chmod(0o755)
    server = state / "health_server.py"
    server.write_text(HEALTH_SERVER)
    (state / "Procfile").write_text(
        f"ingest: python {server} $INGEST_HTTP_PORT\n"
        f"gateway: python {server} $GATEWAY_HTTP_PORT\n"
        "rules: python -m services.no_such_service.main\n"
        "pricing: python -c 'import sys; sys.exit(3)'\n"
        # Runs longer than STACK_START_SECONDS, then crashes: a crash loop, not a quick death.
        f"reporting: python -c '{CRASH_LOOP}'\n"
    )
    names = (
        "kafka",
        "controller",
        "postgres",
        "gateway",
        "ingest",
        "rules",
        "pricing",
        "reporting",
    )
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "TOPIC_PREFIX")
    }
    environment.update(
        STACK_STATE_DIR=str(state),
        STACK_PROCFILE_PATH=str(state / "Procfile"),
        STACK_KAFKA_PORT=str(ports["kafka"]),
        STACK_KAFKA_CONTROLLER_PORT=str(ports["controller"]),
        STACK_POSTGRES_PORT=str(ports["postgres"]),
        STACK_SERVICE_READY_TIMEOUT="20",
        STACK_START_SECONDS="2",
        STACK_START_RETRIES="2",
        GATEWAY_HTTP_PORT=str(ports["gateway"]),
        INGEST_HTTP_PORT=str(ports["ingest"]),
        RULES_HTTP_PORT=str(ports["rules"]),
        PRICING_HTTP_PORT=str(ports["pricing"]),
        REPORTING_HTTP_PORT=str(ports["reporting"]),
        STACK_CRASH_FREE_RESTARTS="1",
        STACK_CRASH_BACKOFF_CAP="6",
        STACK_CRASH_LIMIT="4",
    )
    under_test = Stack(state, environment, ports)
    try:
        yield under_test
    finally:
        under_test.cli("down", "--purge")
        shutil.rmtree(state, ignore_errors=True)  # the test's own files (Procfile, server)


@pytest.mark.timeout(300)
def test_up_starts_broker_database_and_services_and_reports_a_missing_module(
    stack: Stack,
) -> None:
    result = stack.cli("up", "--json")
    assert result.returncode == 1, result.stderr  # the missing module is a failure to report
    assert "services.no_such_service.main does not exist" in result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["kafka"] == {
        "bootstrap_servers": f"127.0.0.1:{stack.ports['kafka']}",
        "healthy": True,
    }
    assert report["postgres"]["healthy"] is True
    states = {p["name"]: (p["state"], p["pid"]) for p in report["processes"]}
    assert states["ingest"][0] == "healthy" and states["gateway"][0] == "healthy"
    assert states["rules"] == ("failed", None)
    assert "pricing" in result.stderr  # it keeps crashing: reported too
    assert report["gateway_url"] == f"http://127.0.0.1:{stack.ports['gateway']}"


@pytest.mark.timeout(300)
def test_up_twice_leaves_one_set_of_processes(stack: Stack) -> None:
    before_pids = stack.recorded_pids()
    before_tree = stack.process_tree(database_children=False)
    assert set(before_pids) == {"kafka", "supervisord"}
    before_services = {n: p["pid"] for n, p in stack.processes().items() if n != "reporting"}
    stack.cli("up")
    assert stack.recorded_pids() == before_pids
    assert stack.process_tree(database_children=False) == before_tree
    after = {n: p["pid"] for n, p in stack.processes().items() if n != "reporting"}
    assert after == before_services
    assert len([p for p in stack.strays() if "kafka.Kafka" in p]) == 1


def wait_for(check: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll until `check` returns something truthy; that value (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s")


@pytest.mark.timeout(120)
def test_a_service_that_keeps_crashing_is_retried_with_back_off_then_given_up(
    stack: Stack,
) -> None:
    pricing = wait_for(lambda: (p := stack.processes()["pricing"])["state"] == "failed" and p)
    assert pricing["pid"] is None
    # STACK_START_RETRIES=2 per `up` (the second `up` above starts it once more, too)
    assert pricing["restarts"] >= 2
    assert pricing["last_exit"]["code"] == 3 and pricing["last_exit"]["expected"] is False


@pytest.mark.timeout(400)
def test_a_service_that_crashes_after_running_a_while_backs_off_then_is_given_up(
    stack: Stack,
) -> None:
    def given_up() -> dict[str, Any] | None:
        reporting = stack.processes()["reporting"]
        return reporting if reporting["state"] == "failed" else None

    reporting = wait_for(given_up, timeout=120)
    assert reporting["pid"] is None
    assert reporting["restarts"] >= 4
    # The service's own last crash, not the gate's giving up.
    assert reporting["last_exit"]["code"] == 1
    assert reporting["last_exit"]["expected"] is False
    assert "crash-looping: gave up after 4 restarts" in stack.cli("status").stdout
    time.sleep(4)  # longer than any back-off: given up means not started again
    assert stack.processes()["reporting"]["restarts"] == reporting["restarts"]

    def backing_off() -> str | None:
        shown = stack.cli("status").stdout
        row = next(line for line in shown.splitlines() if line.startswith("reporting "))
        return row if "restarting" in row and "next start in" in row else None

    # `up` starts it afresh (the crash loop counts from zero again); watched while `up` runs,
    # which waits for its services to settle.
    up = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "stack", "up"],
        env=stack.environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert "restarts within 10 min, next start in" in wait_for(backing_off, timeout=120)
    finally:
        up.wait(240)
    wait_for(given_up, timeout=120)


@pytest.mark.timeout(120)
def test_a_killed_service_is_restarted_and_status_counts_it(stack: Stack) -> None:
    before = stack.processes()["ingest"]
    assert psutil.Process(before["pid"]).cmdline()[1].endswith("health_server.py")
    os.kill(before["pid"], 9)

    def restarted() -> dict[str, Any] | None:
        ingest = stack.processes()["ingest"]
        fresh = ingest["pid"] not in (None, before["pid"]) and ingest["state"] == "healthy"
        return ingest if fresh else None

    ingest = wait_for(restarted)
    assert ingest["restarts"] == before["restarts"] + 1
    assert ingest["last_exit"]["signal"] == "SIGKILL"
    assert "restarts" in stack.cli("status").stdout.splitlines()[4].lower()


@pytest.mark.timeout(180)
def test_up_after_the_supervisor_was_killed_replaces_its_orphans_with_one_copy(
    stack: Stack,
) -> None:
    orphan = stack.processes()["gateway"]["pid"]
    os.kill(stack.recorded_pids()["supervisord"], 9)
    wait_for(lambda: stack.processes()["gateway"]["state"] == "orphaned")
    result = stack.cli("up")
    assert "orphan" in result.stderr
    gateway = stack.processes()["gateway"]
    assert gateway["state"] == "healthy" and gateway["pid"] != orphan
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == "zombie"
    servers = [p for p in stack.strays() if "health_server.py" in p]
    assert len(servers) == 2  # ingest and gateway, once each


@pytest.mark.timeout(60)
def test_status_json_is_the_last_line_with_processes_and_health(stack: Stack) -> None:
    report = stack.status()
    assert report["kafka"]["healthy"] and report["postgres"]["healthy"]
    assert [p["name"] for p in report["processes"]] == [
        "ingest",
        "gateway",
        "rules",
        "pricing",
        "reporting",
    ]
    gateway = next(p for p in report["processes"] if p["name"] == "gateway")
    assert gateway["health_url"] == f"http://127.0.0.1:{stack.ports['gateway']}/health"
    assert gateway["metrics_url"] == f"http://127.0.0.1:{stack.ports['gateway']}/metrics"


OPERATOR_COMMANDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "create-team": (("admin", "create-team", "North Desk", "--json"), None),
    "create-user": (
        (
            "admin",
            "create-user",
            "nina",
            "--email",
            "nina@example.com",
            "--role",
            "sales_team",
            "--team",
            "north-desk",
            "--password-stdin",
            "--json",
        ),
        "a-long-password\n",
    ),
    "list-users": (("admin", "list-users", "--json"), None),
    "reset-password": (
        ("admin", "reset-password", "nina", "--password-stdin", "--json"),
        "another-long-password\n",
    ),
    "db-status": (("admin", "db-status"), None),
    "run": (("run", "--json"), None),
    "runs list": (("runs", "list", "--json"), None),
    "tape push": (("tape", "push", "TAPE", "--tape-id", "OPERATOR-1", "--json"), None),
    "projections rebuild": (("projections", "rebuild", "--timeout", "60", "--json"), None),
    "projections checksum": (("projections", "checksum", "--json"), None),
    "runs show": (("runs", "show", "RUN_ID", "--json"), None),
    "model train": (("model", "train", "--samples", "300", "--json"), None),
    "model promote": (("model", "promote", "1", "--json"), None),
    "model list": (("model", "list", "--json"), None),
}
"""Commands that need the stack and succeed against it (in this order: the first run id of
`runs list` is the one `run` requested; `model promote` promotes what `model train` trained)."""

ANSWERING_COMMANDS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "runs wait": (("runs", "wait", "RUN_ID", "--timeout", "1", "--json"), None),
    "runs reprocess": (("runs", "reprocess", "RUN_ID", "--json"), None),
    "runs diff": (("runs", "diff", "RUN_ID", "--json"), None),
}
"""Commands that need the stack but whose success needs what this stack of health servers never
makes (a completed, projected run): they must reach it and answer in one line."""

STACK_FREE_COMMANDS: dict[str, tuple[str, ...]] = {
    "rules list": ("rules", "list", "--json"),
    "rules show": ("rules", "show", "2026.12.1"),
    "rules diff": ("rules", "diff", "2026.11.1", "2026.12.1"),
    "model list": ("model", "list", "--json"),
}
"""Commands that need no running stack (the rule sets ship with the code; the model registry is
the stack's folder): they work with an empty environment whether the stack runs or not."""

ABSENT_RUN = "00000000-0000-4000-8000-000000000001"


def operator_args(stack: Stack, args: tuple[str, ...]) -> list[str]:
    """The command with TAPE replaced by a small generated tape of this stack's folder."""
    tape = stack.state / "operator" / "tape.csv"
    if "TAPE" in args and not tape.exists():
        generated = stack.operator(
            "tape", "generate", "--loans", "3", "--seed", "1", "--out", str(tape)
        )
        assert generated.returncode == 0, generated.stderr
    run_id = ABSENT_RUN
    if "RUN_ID" in args:
        listed = stack.operator("runs", "list", "--json")
        runs = json.loads(listed.stdout.strip().splitlines()[-1])["runs"] if listed.stdout else []
        run_id = runs[0]["run_id"] if runs else ABSENT_RUN
    replaced = {"TAPE": str(tape), "RUN_ID": run_id}
    return [replaced.get(arg, arg) for arg in args]


@pytest.mark.timeout(150)
@pytest.mark.parametrize("command", list(OPERATOR_COMMANDS))
def test_an_operator_with_an_empty_environment_reaches_the_running_stack(
    stack: Stack, command: str
) -> None:
    args, stdin = OPERATOR_COMMANDS[command]
    result = stack.operator(*operator_args(stack, args), stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if "--json" in args:
        json.loads(result.stdout.strip().splitlines()[-1])


def assert_one_line_answer(result: subprocess.CompletedProcess[str]) -> list[str]:
    """No traceback and at most one error line; the error lines."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, result.stderr
    return errors


@pytest.mark.timeout(150)
@pytest.mark.parametrize("command", list(ANSWERING_COMMANDS))
def test_an_operator_with_an_empty_environment_gets_the_stacks_own_answer(
    stack: Stack, command: str
) -> None:
    args, stdin = ANSWERING_COMMANDS[command]
    result = stack.operator(*operator_args(stack, args), stdin=stdin)
    errors = assert_one_line_answer(result)
    assert result.returncode in (0, 1, 2), result.stderr
    assert not [line for line in errors if "cannot reach" in line], result.stderr


@pytest.mark.timeout(150)
@pytest.mark.parametrize("command", list(STACK_FREE_COMMANDS))
def test_commands_that_need_no_stack_work_with_an_empty_environment(
    stack: Stack, command: str
) -> None:
    result = stack.operator(*STACK_FREE_COMMANDS[command])
    assert result.returncode == 0, result.stderr
    assert_one_line_answer(result)


@pytest.mark.timeout(60)
def test_the_model_commands_use_the_stacks_own_registry(stack: Stack) -> None:
    listed = stack.operator("model", "list", "--json")
    versions = json.loads(listed.stdout.strip().splitlines()[-1])["versions"]
    assert [(v["version"], v["stage"]) for v in versions] == [("1", "production")]
    assert any((stack.state / "state" / "scoring").iterdir())


@pytest.mark.timeout(60)
def test_what_the_operator_did_went_to_the_stacks_database_and_broker(stack: Stack) -> None:
    users = stack.operator("admin", "list-users", "--json")
    listed = json.loads(users.stdout.strip().splitlines()[-1])["users"]
    assert {(u["username"], u["team_id"]) for u in listed} >= {("nina", "north-desk")}
    runs = json.loads(stack.operator("runs", "list", "--json").stdout.strip().splitlines()[-1])
    assert len(runs["runs"]) >= 1  # the run the operator requested, as the stack's log knows it


@pytest.mark.timeout(120)
def test_down_leaves_no_process_behind_even_when_the_supervisor_was_killed(stack: Stack) -> None:
    tree = stack.process_tree()
    assert len(tree) > 5
    os.kill(stack.recorded_pids()["supervisord"], 9)
    result = stack.cli("down")
    assert result.returncode == 0, result.stderr
    assert not [
        pid
        for pid in tree
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert stack.strays() == []
    report = stack.status()
    assert not report["kafka"]["healthy"] and not report["postgres"]["healthy"]
    assert {p["state"] for p in report["processes"]} == {"stopped", "failed"}


NEEDING_THE_STACK = {
    name: command
    for name, command in {**OPERATOR_COMMANDS, **ANSWERING_COMMANDS}.items()
    if command[0][0] != "model"
}


@pytest.mark.timeout(150)
@pytest.mark.parametrize("command", list(NEEDING_THE_STACK))
def test_with_the_stack_down_each_command_says_what_it_tried_in_one_line(
    stack: Stack, command: str
) -> None:
    args, stdin = NEEDING_THE_STACK[command]
    result = stack.operator(*operator_args(stack, args), stdin=stdin)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len([line for line in errors if line.startswith("error:")]) == 1, result.stderr
    error = errors[-1]
    assert error.startswith("error: cannot reach "), result.stderr
    assert f"127.0.0.1:{stack.ports['kafka']}" in error or f":{stack.ports['postgres']}/" in error
    assert "loan-engine stack up" in error


@pytest.mark.timeout(150)
@pytest.mark.parametrize("command", list(STACK_FREE_COMMANDS))
def test_with_the_stack_down_commands_that_need_no_stack_still_work(
    stack: Stack, command: str
) -> None:
    result = stack.operator(*STACK_FREE_COMMANDS[command])
    assert result.returncode == 0, result.stderr
    assert_one_line_answer(result)


@pytest.mark.timeout(120)
def test_down_purge_deletes_the_stacks_data_and_leaves_the_tests_own_files(stack: Stack) -> None:
    assert (stack.state / "postgres" / "data" / "PG_VERSION").exists()
    result = stack.cli("down", "--purge")
    assert result.returncode == 0, result.stderr
    assert "deleted:" in result.stderr
    left = sorted(path.name for path in stack.state.iterdir())
    # The lock file stays while the folder does: nothing else may take the stack's lock anew.
    assert left == ["Procfile", "health_server.py", "lock", "operator"]
    assert f"left {stack.state}" in result.stderr
