"""The fault table: each fault injected into a run of a large generated tape, on a private stack.

    .venv/bin/python benchmarks/faults.py --loans 200000 [--fault "broker restart" ...]

Starts a stack of its own (`loan-engine stack up` in a temporary state folder, on free ports or
the block from `--port-base`), runs the tape once undisturbed as the reference, then once per
fault with the fault injected at a random moment (the seed is printed), and checks what
`tests/faults/` checks: the run completes with the reference's totals, byte-identical reports,
every loan projected once, and read models equal to a rebuild from the log. It prints one table
row per fault (outcome, when the fault hit, when it ended, the run's time, recovery seconds from
the end of the fault to the run's end, extra seconds over the reference, and those extra seconds
less the fault's own length) and a JSON object as the last line. Times on a shared machine are
indicative only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from tests.faults.harness import (  # noqa: E402 - the project root goes on sys.path first
    Outcome,
    PrivateStack,
    baseline,
    check_projected,
    delay_for,
    exercise,
    port_block,
    progress,
    standard_faults,
)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=200_000)
    parser.add_argument("--fault", action="append", help="Only these faults (repeatable).")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--port-base", type=int, help="Ports from here on (else free ones).")
    parser.add_argument("--broker-down", type=float, default=20.0, help="Seconds down.")
    parser.add_argument("--postgres-down", type=float, default=20.0, help="Seconds down.")
    parser.add_argument("--rebalance-stay", type=float, default=20.0, help="Seconds joined.")
    parser.add_argument("--timeout", type=float, default=3600.0, help="Per run, seconds.")
    parser.add_argument(
        "--projections",
        choices=("each", "end"),
        default="each",
        help="Wait for the read models to hold each faulted run before the next fault, or check "
        "every run's projection after the last fault (on a loaded machine the projector lags "
        "minutes behind a 200,000-loan run; the pipeline need not wait for it).",
    )
    parser.add_argument(
        "--rebuild",
        choices=("each", "end"),
        default="each",
        help="Compare the read models with a rebuild after each fault (a rebuild replays every "
        "run so far), or once after the last fault (what tests/faults/ does; much shorter).",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=600.0,
        help="Seconds the read models may take to come to rest (scoring and review jobs "
        "finishing) before each checksum; longer: fails as not settled.",
    )
    return parser.parse_args()


def rebuilt_after_every_fault(stack: PrivateStack) -> Outcome:
    """One rebuild after the last fault: the read models every faulted run left, checked."""
    outcome = Outcome("read models = rebuild (every run)")
    progress("comparing the read models with a rebuild from the log")
    started = time.monotonic()
    try:
        outcome.checksums = stack.checksums()
    except Exception as error:  # reported in the table like a fault's failure
        outcome.problems.append(f"{type(error).__name__}: {error}")
    else:
        if outcome.checksums[0] != outcome.checksums[1]:
            outcome.problems.append(f"projection checksum {outcome.checksums} differs")
    outcome.note = f"checksum {outcome.checksums[0][:16]}, {time.monotonic() - started:.0f}s"
    return outcome


def row(outcome: Outcome, reference_seconds: float) -> list[str]:
    if outcome.run is None and not outcome.problems and outcome.checksums[0]:
        return [outcome.fault, "ok", "", "", "", "", "", "", outcome.note]
    run = outcome.run
    seconds = run.seconds if run is not None else float("nan")
    return [
        outcome.fault,
        "ok" if outcome.ok else "FAILED",
        f"{outcome.injected_at:.1f}",
        f"{outcome.recovered_at:.1f}",
        f"{seconds:.1f}",
        f"{outcome.recovery_seconds:.1f}",
        f"{seconds - reference_seconds:+.1f}",
        # What the fault cost beyond its own length: time lost catching up once it ended.
        f"{seconds - reference_seconds - (outcome.recovered_at - outcome.injected_at):+.1f}",
        "; ".join(outcome.problems)[:200],
    ]


def table(rows: list[list[str]]) -> str:
    header = [
        "fault",
        "outcome",
        "hit at s",
        "ended at s",
        "run s",
        "recovery s",
        "extra s",
        "extra after fault s",
        "problems",
    ]
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    )


def main() -> None:
    args = arguments()
    faults = standard_faults(args.broker_down, args.postgres_down, args.rebalance_stay)
    chosen = args.fault or list(faults)
    unknown = [name for name in chosen if name not in faults]
    if unknown:
        sys.exit(f"unknown faults {unknown}; known: {list(faults)}")
    with tempfile.TemporaryDirectory(prefix="loan-engine-faults-") as folder:
        root = Path(folder)
        ports = port_block(args.port_base) if args.port_base else None
        stack = PrivateStack(root / "stack", ports)
        stack.settle_seconds = args.settle
        try:
            progress("starting a private stack")
            stack.up()
            tape = root / "tape.csv"
            progress(f"generating {args.loans} loans")
            stack.cli(
                "tape",
                "generate",
                "--loans",
                str(args.loans),
                "--seed",
                "10",
                "--out",
                str(tape),
                timeout=3600,
            )
            reference = baseline(stack, tape, args.timeout)
            progress(f"reference run: {reference.seconds:.1f}s, seed {args.seed}")
            outcomes: list[Outcome] = []
            for name in chosen:
                rng = random.Random(f"{args.seed}:{name}")
                try:
                    outcome = exercise(
                        stack,
                        tape,
                        reference,
                        name,
                        faults[name],
                        rng,
                        delay=delay_for(name, reference.seconds),
                        timeout=args.timeout,
                        rebuild=args.rebuild == "each",
                        project=args.projections == "each",
                    )
                except Exception as error:  # one fault's harness failure must not hide the rest
                    outcome = Outcome(name, problems=[f"{type(error).__name__}: {error}"])
                outcomes.append(outcome)
                progress(f"{name}: {'ok' if outcome.ok else 'FAILED'} {outcome.problems}")
            if args.projections == "end":
                for outcome in outcomes:
                    check_projected(stack, outcome, reference, args.timeout)
                    progress(f"{outcome.fault}: projected {outcome.projected}")
            if args.rebuild == "end":
                outcomes.append(rebuilt_after_every_fault(stack))
        finally:
            stack.down(purge=True)
    rows = [row(outcome, reference.seconds) for outcome in outcomes]
    sys.stdout.write(table(rows) + "\n")
    summary = {
        "loans": args.loans,
        "seed": args.seed,
        "reference_seconds": round(reference.seconds, 1),
        "faults": [
            {
                "fault": outcome.fault,
                "ok": outcome.ok,
                "problems": outcome.problems,
                "note": outcome.note,
                "injected_at": round(outcome.injected_at, 1),
                "recovered_at": round(outcome.recovered_at, 1),
                "run_seconds": round(outcome.run.seconds, 1) if outcome.run else None,
                "recovery_seconds": round(outcome.recovery_seconds, 1),
            }
            for outcome in outcomes
        ],
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.exit(0 if all(outcome.ok for outcome in outcomes) else 1)


if __name__ == "__main__":
    main()
