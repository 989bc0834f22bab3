"""Faults against a private stack, and what must hold after each (issue 10, SPEC §5).

A `PrivateStack` is `loan-engine stack up` in a state folder and port block of its own, so its
broker and PostgreSQL can be killed and restarted without touching anyone else's. `exercise`
starts a run of a tape, injects one fault at a random moment while the run is in flight, waits
for the run, and checks it against an undisturbed run of the same tape: the same status, totals
and dispositions, byte-identical reports, every loan projected once, and read models whose
checksum equals the checksum of a rebuild from the log. Used by `tests/faults/` (≈20,000 loans)
and `benchmarks/faults.py` (200,000 and more).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from services.cli.stack import postgres
from services.cli.stack.ports import free_port
from services.cli.stack.settings import StackSettings
from tests.net import answers
from tests.storage_faults import set_writable

PROJECT = Path(__file__).resolve().parents[2]
PDATE = "2026-11-23"
SERVICES = ("ingest", "rules", "pricing", "reporting", "gateway", "projector", "scoring")
# Variables that point a process at other infrastructure: the private stack sets its own.
FOREIGN = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "REDIS_URL", "TOPIC_PREFIX", "STORAGE_ROOT")
PORT_VARIABLES = (
    "STACK_KAFKA_PORT",
    "STACK_KAFKA_CONTROLLER_PORT",
    "STACK_POSTGRES_PORT",
    "STACK_PROMETHEUS_PORT",
    "STACK_GRAFANA_PORT",
    "GATEWAY_HTTP_PORT",
    "INGEST_HTTP_PORT",
    "RULES_HTTP_PORT",
    "PRICING_HTTP_PORT",
    "REPORTING_HTTP_PORT",
    "PROJECTOR_HTTP_PORT",
    "SCORING_HTTP_PORT",
    "JOBS_HTTP_PORT",
)
"""Every port a stack takes: a private stack sets each, so none falls back to a default port
of the shared dev stack (9092, 55432, 8000, 8101-8107)."""


def port_block(base: int) -> dict[str, int]:
    """Every port of a stack from `base` on, in PORT_VARIABLES order."""
    return {name: base + offset for offset, name in enumerate(PORT_VARIABLES)}


def progress(message: str) -> None:
    """Progress on stderr (pytest shows it with -s; the benchmark always)."""
    sys.stderr.write(f"[faults {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class NotSettled(RuntimeError):
    """The read models kept changing: the system never came to rest."""


class StackError(RuntimeError):
    """A stack command failed."""


class PrivateStack:
    """`loan-engine stack` in `state_dir` on the given ports (free ones when not given)."""

    def __init__(self, state_dir: Path, ports: dict[str, int] | None = None) -> None:
        self.state_dir = state_dir
        chosen = ports or {name: free_port() for name in PORT_VARIABLES}
        self.env = {key: value for key, value in os.environ.items() if key not in FOREIGN}
        self.env.update({name: str(port) for name, port in chosen.items()})
        # The projector and the review jobs also read the gateway's prefixed names: both must
        # name their own port.
        self.env["GATEWAY_PROJECTOR_HTTP_PORT"] = self.env["PROJECTOR_HTTP_PORT"]
        self.env["GATEWAY_JOBS_HTTP_PORT"] = self.env["JOBS_HTTP_PORT"]
        self.env.update({"STACK_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"})
        self.helpers: list[subprocess.Popen[bytes]] = []

    @property
    def settings(self) -> StackSettings:
        """The stack's settings as the CLI reads them from this environment."""
        return StackSettings(
            state_dir=self.state_dir,
            kafka_port=int(self.env["STACK_KAFKA_PORT"]),
            kafka_controller_port=int(self.env["STACK_KAFKA_CONTROLLER_PORT"]),
            postgres_port=int(self.env["STACK_POSTGRES_PORT"]),
        )

    def cli(self, *arguments: str, timeout: float = 900, check: bool = True) -> Any:
        """Run `loan-engine ARGS`; with `--json`, the object on the last line of stdout."""
        env = self.env
        if arguments[0] != "stack" and (self.state_dir / "env").exists():
            # Not every command finds the running stack by itself yet (`projections` did not):
            # name its broker, database and storage outright.
            env = {**self.env, **self.infra()}
        done = subprocess.run(
            [sys.executable, "-m", "services.cli.main", *arguments],
            env=env,
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise StackError(
                f"loan-engine {' '.join(arguments)} exited {done.returncode}:\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        if "--json" in arguments:
            lines = done.stdout.strip().splitlines()
            return json.loads(lines[-1]) if lines else None
        return done

    def up(self) -> None:
        """Start whatever of the stack is not running (idempotent)."""
        self.cli("stack", "up", timeout=600)

    def down(self, purge: bool = False) -> None:
        """Stop the stack and every helper process; with `purge`, delete its data for good (its
        PostgreSQL cluster too, which lives under /var/tmp when the state folder is private)."""
        for helper in self.helpers:
            _terminate(helper)
        self.cli("stack", "down", *(["--purge"] if purge else []), timeout=300, check=False)

    def infra(self) -> dict[str, str]:
        """The variables the stack gives its services (`<state>/env`)."""
        values: dict[str, str] = {}
        for line in (self.state_dir / "env").read_text().splitlines():
            name, _, value = line.partition("=")
            if name and not name.startswith("#"):
                values[name.strip()] = value.strip().strip("'\"")
        return values

    def pid(self, name: str) -> int:
        """The pid the stack recorded for a process (`kafka` or a Procfile service)."""
        recorded = json.loads((self.state_dir / "state.json").read_text())
        return int(recorded["processes"][name]["pid"])

    @property
    def storage_root(self) -> Path:
        return self.state_dir / "storage"

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, tape: Path) -> str:
        """Upload `tape` and request its run; the run id."""
        started = self.cli("run", str(tape), "--pdate", PDATE, "--json", timeout=600)
        return str(started["run_id"])

    def wait_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        """The run's result once it completed or failed (asking again while the stack recovers)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"run {run_id} did not end within {timeout:.0f}s")
            try:
                view = self.cli(
                    "runs",
                    "wait",
                    run_id,
                    "--timeout",
                    f"{min(left, 60):.0f}",
                    "--json",
                    timeout=left + 60,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                view = None
            if view and view.get("status") in ("completed", "failed"):
                return dict(view)
            time.sleep(1)

    # -- the read models ------------------------------------------------------------------------

    def projected(self, run_id: str) -> tuple[str | None, int]:
        """The run's status and how many of its loans the read models hold."""

        async def query() -> tuple[str | None, int]:
            url = self.infra()["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
            conn = await asyncpg.connect(url)
            try:
                status = await conn.fetchval(
                    "SELECT status FROM gateway.runs WHERE run_id = $1::uuid", run_id
                )
                loans = await conn.fetchval(
                    "SELECT count(*) FROM gateway.loan_facts WHERE run_id = $1::uuid", run_id
                )
                return status, int(loans)
            finally:
                await conn.close()

        return asyncio.run(query())

    def wait_projected(self, run_id: str, loans: int, timeout: float) -> tuple[str | None, int]:
        """Wait until the read models show the run completed with `loans` loans."""
        deadline = time.monotonic() + timeout
        seen: tuple[str | None, int] = (None, 0)
        while time.monotonic() < deadline:
            try:
                seen = self.projected(run_id)
            except (OSError, asyncpg.PostgresError):
                seen = (None, 0)
            if seen == ("completed", loans):
                return seen
            time.sleep(0.5)
        return seen

    def checksums(self) -> tuple[str, str]:
        """The read models' checksum as projected, and after a rebuild from the log.

        Each is read once the system is at rest: scoring and the gateway's review job go on
        publishing after a run completes (scores, cases), so a checksum taken while they work
        would compare two different logs, not a projection with its rebuild.
        """
        live = self.settled_checksum()
        self.cli("projections", "rebuild", "--json", timeout=900)
        rebuilt = self.settled_checksum()
        return live, rebuilt

    settle_seconds: float = 600.0
    """How long the read models may take to come to rest before a checksum is read."""

    def settled_checksum(self, quiet: float = 5.0) -> str:
        """The checksum once two readings `quiet` seconds apart agree.

        Never one read while they still change: compared with a rebuild, that would report a
        moving target as a difference. Raises NotSettled when they do not come to rest in time.
        """
        deadline = time.monotonic() + self.settle_seconds
        last = str(self.cli("projections", "checksum", "--json")["checksum"])
        while time.monotonic() < deadline:
            time.sleep(quiet)
            current = str(self.cli("projections", "checksum", "--json")["checksum"])
            if current == last:
                return current
            last = current
        raise NotSettled(
            f"the read models were still changing after {self.settle_seconds:.0f} s "
            "(scoring or the review jobs still at work): no checksum to compare"
        )

    # -- faults ---------------------------------------------------------------------------------

    def supervised(self) -> dict[str, Any]:
        """supervisord's view of the services ({} when the stack has no supervisor)."""
        try:
            from services.cli.stack import supervision
        except ImportError:  # a stack that runs its services under honcho
            return {}
        return dict(supervision.programs(self.settings))

    def worker_pid(self, name: str) -> int:
        """The pid of a service's own Python process (the stack may record its runner's)."""
        program = self.supervised().get(name)
        if program is not None and program.pid:
            return int(program.pid)
        recorded = psutil.Process(self.pid(name))
        module = f"services.{name}.main" if name != "projector" else "projector.main"
        for process in [recorded, *recorded.children(recursive=True)]:
            if any(module in part for part in process.cmdline()):
                return process.pid
        raise StackError(f"no {name} process under pid {recorded.pid}")

    def kill(self, name: str) -> None:
        """`kill -9` a service's process and wait until it is gone."""
        pid = self.worker_pid(name)
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 30)

    def stop_broker(self) -> None:
        """SIGTERM the broker and wait until it has exited."""
        pid = self.pid("kafka")
        os.kill(pid, signal.SIGTERM)
        _wait_gone(pid, 120)

    def stop_postgres(self) -> None:
        """`pg_ctl stop -m fast` (what `pg_ctl restart -m fast` does first)."""
        postgres.stop(self.settings)

    def start_helper(self, service: str) -> tuple[subprocess.Popen[bytes], str]:
        """A second instance of a worker, joining its consumer group; and its readiness URL."""
        port = free_port()
        env = {**self.env, **self.infra(), f"{service.upper()}_HTTP_PORT": str(port)}
        log = (self.state_dir / "logs" / f"{service}-second.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}.main"],
            env=env,
            cwd=PROJECT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.helpers.append(process)
        return process, f"http://127.0.0.1:{port}/health/ready"


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # A dead process stays a zombie until its parent (the runner) reaps it.
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.2)
    raise StackError(f"process {pid} still runs {timeout:.0f}s after it was told to stop")


def _terminate(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- what an undisturbed run gives, and checking a disturbed one against it ----------------------


@dataclass(frozen=True)
class RunResult:
    """A finished run: its result, its reports' bytes, and its seconds from the run request
    (the tape already uploaded) until its reports were stored."""

    run_id: str
    view: dict[str, Any]
    reports: dict[str, bytes]
    seconds: float

    @property
    def facts(self) -> dict[str, Any]:
        """What must be equal between two runs of one tape."""
        keys = ("status", "total_loans", "total_balance", "exceptions_count", "dispositions")
        return {key: self.view.get(key) for key in keys}


def reports_stored(stack: PrivateStack, run_id: str) -> bool:
    """Whether the run's last report is in storage (its pipeline has finished)."""
    return (stack.storage_root / "outputs" / run_id / "exception_summary.csv").exists()


def finished(stack: PrivateStack, run_id: str, requested: float, timeout: float) -> RunResult:
    """Wait for the run and read its reports; `requested` is the wall-clock request time."""
    view = stack.wait_run(run_id, timeout)
    paths = [Path(path) for path in (view.get("reports") or {}).values()]
    # The pipeline's own end: when its reports were stored, not when the CLI noticed.
    ended = max((path.stat().st_mtime for path in paths), default=time.time())
    reports = {key: Path(path).read_bytes() for key, path in (view.get("reports") or {}).items()}
    return RunResult(run_id, view, reports, ended - requested)


def baseline(stack: PrivateStack, tape: Path, timeout: float) -> RunResult:
    """An undisturbed run of `tape` (timed from the run request, after the upload)."""
    run_id = stack.start_run(tape)
    return finished(stack, run_id, time.time(), timeout)


@dataclass
class Outcome:
    """One fault's result: what held, and how long recovery took."""

    fault: str
    run: RunResult | None = None
    injected_at: float = 0.0
    recovered_at: float = 0.0
    projected: tuple[str | None, int] = (None, 0)
    checksums: tuple[str, str] = ("", "")
    problems: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def recovery_seconds(self) -> float:
        """From the end of the fault (dependency back, process restarted) to the run's end."""
        if self.run is None:
            return float("nan")
        return max(0.0, self.run.seconds - self.recovered_at)


Fault = Callable[[PrivateStack, random.Random], str]
"""Injects a fault into a stack with a run in flight; returns a note on what it did."""


def kill_service(name: str, restart_timeout: float = 120.0) -> Fault:
    """`kill -9` a service; its supervisor restarts it (a stack without one: `stack up`)."""

    def inject(stack: PrivateStack, _: random.Random) -> str:
        pid = stack.worker_pid(name)
        stack.kill(name)
        if not stack.supervised():
            stack.up()
            return f"kill -9 {name} (no supervisor: stack up)"
        deadline = time.monotonic() + restart_timeout
        while time.monotonic() < deadline:
            program = stack.supervised().get(name)
            if program is not None and program.statename == "RUNNING" and program.pid != pid:
                return f"kill -9 {name}, restarted by supervisord"
            time.sleep(0.5)
        raise StackError(f"{name} was not restarted within {restart_timeout:.0f}s")

    return inject


def restart_broker(down_seconds: float) -> Fault:
    def inject(stack: PrivateStack, _: random.Random) -> str:
        stack.stop_broker()
        time.sleep(down_seconds)
        stack.up()
        return f"broker SIGTERM, down {down_seconds:g}s, stack up"

    return inject


def restart_postgres(down_seconds: float) -> Fault:
    def inject(stack: PrivateStack, _: random.Random) -> str:
        stack.stop_postgres()
        time.sleep(down_seconds)
        stack.up()
        return f"pg_ctl stop -m fast, down {down_seconds:g}s, stack up"

    return inject


def storage_unwritable(hold_after_refusal: float, limit: float = 120.0) -> Fault:
    """The outputs folder refuses writes until reporting has been refused, then a while more."""

    def inject(stack: PrivateStack, _: random.Random) -> str:
        outputs = stack.storage_root / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        log = stack.state_dir / "logs" / "reporting.log"
        seen = log.stat().st_size if log.exists() else 0
        set_writable(outputs, False)
        try:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                with log.open("rb") as handle:
                    handle.seek(seen)
                    if b"writing outputs failed, retrying" in handle.read():
                        break
                time.sleep(0.5)
            time.sleep(hold_after_refusal)
        finally:
            set_writable(outputs, True)
        return f"outputs unwritable until reporting was refused, then {hold_after_refusal:g}s"

    return inject


def rebalance(stay_seconds: float) -> Fault:
    """A second rules and pricing instance join their groups, then leave mid-run."""

    def inject(stack: PrivateStack, _: random.Random) -> str:
        second = [stack.start_helper("rules"), stack.start_helper("pricing")]
        started = time.monotonic()
        deadline = started + 120
        while time.monotonic() < deadline and not all(answers(url) for _, url in second):
            time.sleep(0.3)
        joined = time.monotonic() - started
        time.sleep(stay_seconds)
        for process, _ in second:
            _terminate(process)
        return f"second rules and pricing ready after {joined:.1f}s, stayed {stay_seconds:g}s, left"

    return inject


def exercise(
    stack: PrivateStack,
    tape: Path,
    reference: RunResult,
    fault_name: str,
    fault: Fault,
    rng: random.Random,
    *,
    delay: tuple[float, float],
    timeout: float,
    rebuild: bool = True,
    project: bool = True,
) -> Outcome:
    """Run `tape`, inject `fault` after a random delay within `delay`, check the outcome.

    With `project`, wait until the read models hold the run (completed, every loan once);
    without, the caller checks that later (`check_projected`), so the next fault need not wait
    for the projector. With `rebuild`, the read models are also compared with a rebuild from the
    log (a rebuild replays every run so far: a suite of many faults may do it once at its end).
    """
    outcome = Outcome(fault_name)
    run_id = stack.start_run(tape)
    started = time.time()
    time.sleep(rng.uniform(*delay))
    outcome.injected_at = time.time() - started
    if reports_stored(stack, run_id):
        outcome.problems.append(f"the run ended before the fault ({outcome.injected_at:.1f}s)")
    progress(f"{fault_name}: injecting {outcome.injected_at:.1f}s into run {run_id}")
    outcome.note = fault(stack, rng)
    outcome.recovered_at = time.time() - started
    progress(f"{fault_name}: recovered at {outcome.recovered_at:.1f}s ({outcome.note})")
    run = finished(stack, run_id, started, timeout)
    outcome.run = run
    progress(f"{fault_name}: run {run.view.get('status')} after {run.seconds:.1f}s")
    if run.facts != reference.facts:
        outcome.problems.append(f"facts differ: {run.facts} != {reference.facts}")
    if run.reports != reference.reports:
        differing = sorted(
            key
            for key in set(run.reports) | set(reference.reports)
            if run.reports.get(key) != reference.reports.get(key)
        )
        outcome.problems.append(f"reports differ: {differing}")
    if project:
        check_projected(stack, outcome, reference, timeout)
    if rebuild:
        outcome.checksums = stack.checksums()
        if outcome.checksums[0] != outcome.checksums[1]:
            outcome.problems.append(
                f"projection checksum {outcome.checksums} differs from a rebuild"
            )
    return outcome


def check_projected(
    stack: PrivateStack, outcome: Outcome, reference: RunResult, timeout: float
) -> None:
    """Wait until the read models show the outcome's run completed with every loan, once."""
    if outcome.run is None:
        return
    loans = int(reference.view.get("total_loans") or 0)
    outcome.projected = stack.wait_projected(outcome.run.run_id, loans, timeout)
    if outcome.projected != ("completed", loans):
        outcome.problems.append(f"projected {outcome.projected}, expected completed with {loans}")


# Faults injected right after the run request: a second worker needs seconds to start before
# it joins its group, and must join while the run is in flight.
EARLY = frozenset({"consumer rebalance"})


def delay_for(fault: str, fastest: float) -> tuple[float, float]:
    """When to inject `fault`: a random moment within the first 40% of the fastest run seen
    (runs get faster as caches warm, and the fault must hit the run in flight)."""
    if fault in EARLY:
        return (0.0, 0.2)
    return (0.2, max(0.5, 0.4 * fastest))


def standard_faults(broker_down: float, postgres_down: float, stay: float) -> dict[str, Fault]:
    """Every fault of the suite, by name."""
    faults: dict[str, Fault] = {f"kill -9 {name}": kill_service(name) for name in SERVICES}
    faults["broker restart"] = restart_broker(broker_down)
    faults["postgres restart"] = restart_postgres(postgres_down)
    faults["storage unwritable"] = storage_unwritable(hold_after_refusal=3.0)
    faults["consumer rebalance"] = rebalance(stay)
    return faults
