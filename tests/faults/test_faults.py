"""The fault suite: a run in flight survives each fault with the same result as an undisturbed run.

One private stack (its own broker, PostgreSQL, services and ports) serves the module, and one
undisturbed run of a ≈20,000-loan tape is the reference. Each test starts a run of the same
tape, injects one fault at a random moment (the seed is printed), and requires the run to
complete with the reference's totals and byte-identical reports, every loan projected once, and
read models equal to a rebuild from the log (checked once, after every fault: a rebuild replays
every run so far). `benchmarks/faults.py` runs the same on 200,000+, with a rebuild per fault.
"""

import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import (
    PrivateStack,
    RunResult,
    baseline,
    delay_for,
    exercise,
    port_block,
    progress,
    standard_faults,
)
from tests.storage_faults import can_make_unwritable

pytestmark = pytest.mark.faults

LOANS = 20_000
SEED = int(time.time())
RUN_TIMEOUT = 600.0
FASTEST: list[float] = []
"""Seconds of runs so far, less the time their fault lasted: when to inject the next fault."""
FAULTS = standard_faults(broker_down=10.0, postgres_down=5.0, stay=6.0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    """A stack of the module's own: its broker and database are restarted by the tests."""
    if shutil.which("java") is None:
        pytest.skip("a private stack needs Java for its Kafka broker")
    # FAULTS_PORT_BASE pins the stack to a port block (a shared machine); free ports otherwise.
    base = os.environ.get("FAULTS_PORT_BASE")
    ports = port_block(int(base)) if base else None
    private = PrivateStack(tmp_path_factory.mktemp("faults-stack"), ports)
    try:
        private.up()
        yield private
    finally:
        private.down(purge=True)


@pytest.fixture(scope="module")
def tape(stack: PrivateStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults-tape") / "faults.csv"
    stack.cli("tape", "generate", "--loans", str(LOANS), "--seed", "10", "--out", str(path))
    return path


@pytest.fixture(scope="module")
def reference(stack: PrivateStack, tape: Path) -> RunResult:
    """The undisturbed run every faulted run must equal."""
    result = baseline(stack, tape, RUN_TIMEOUT)
    assert result.view["status"] == "completed", result.view
    assert result.view["total_loans"] == LOANS
    progress(f"reference run: {result.seconds:.1f}s; fault seed {SEED}")
    return result


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_run_in_flight_survives_the_fault_with_identical_reports_and_read_models(
    fault: str, stack: PrivateStack, tape: Path, reference: RunResult
) -> None:
    if fault == "storage unwritable" and not can_make_unwritable():
        pytest.skip("no way to make a folder refuse this user's writes")
    rng = random.Random(f"{SEED}:{fault}")
    outcome = exercise(
        stack,
        tape,
        reference,
        fault,
        FAULTS[fault],
        rng,
        delay=delay_for(fault, min(FASTEST, default=reference.seconds)),
        timeout=RUN_TIMEOUT,
        rebuild=False,
    )
    progress(
        f"{fault}: {'ok' if outcome.ok else 'FAILED'}, recovery {outcome.recovery_seconds:.1f}s"
    )
    if outcome.run is not None:
        seconds, lasted = outcome.run.seconds, outcome.recovered_at - outcome.injected_at
        undisturbed = seconds if seconds <= outcome.injected_at else seconds - lasted
        if undisturbed > 0:
            FASTEST.append(undisturbed)
    assert outcome.ok, f"seed {SEED}: {outcome.problems}"


def test_the_read_models_after_every_fault_equal_a_rebuild_from_the_log(
    stack: PrivateStack,
    reference: RunResult,  # noqa: ARG001 - the reference run is part of what is checked
) -> None:
    # Runs last in the module: one rebuild checks what every faulted run left projected.
    live, rebuilt = stack.checksums()
    assert live == rebuilt
