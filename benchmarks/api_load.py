"""The gateway under load: N concurrent clients on paged lists, lookups and summaries.

    .venv/bin/python benchmarks/api_load.py --base-url http://127.0.0.1:8000 --clients 50

A bounded asyncio httpx client for a gateway on this machine only (loopback addresses are the
only targets it accepts). It logs in once (GATEWAY_ADMIN_USERNAME / GATEWAY_ADMIN_PASSWORD, or
the options), picks the newest run (or `--run-id`), then each client sends requests back to back
(or, with `--think S`, starting at a random moment of the first S seconds and pausing S seconds
on average after each answer, as people at their screens do) until `--requests` have been sent
in all or `--seconds` have passed, whichever comes first, and stops by itself. It prints, per
kind of request and overall, the count, p50, p99 and max latency in milliseconds and the errors
(any status but 200, or a transport error).

`--server-pid PID` (the gateway process, on this machine) adds the gateway's CPU milliseconds per
request (from /proc): on a loaded machine latencies measure the queue for a core, this does not.
Back to back, N clients always keep N requests queued, so a latency is about N x the CPU of one
request divided by the cores serving them (a throughput test); with think time the same N
clients measure what each of them waits.

The API's per-user rate limit (GATEWAY_RATE_LIMIT_API, 100/minute) would answer most requests
429: start the gateway under test with GATEWAY_RATE_LIMIT_ENABLED=false or a high limit.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import socket
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_SKIP = 2_000


@dataclass
class Results:
    """Latencies (seconds) and error counts by kind of request."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    # (wall-clock start, kind, seconds, status) of every request, for --trace.
    trace: list[tuple[float, str, float, int | None]] = field(default_factory=list)

    def record(self, kind: str, seconds: float, status: int | None) -> None:
        self.latencies[kind].append(seconds)
        self.trace.append((time.time() - seconds, kind, seconds, status))
        if status is not None:
            self.statuses[status] += 1
        if status != 200:
            self.errors[kind] += 1

    def summary(self) -> dict[str, Any]:
        kinds = {kind: _stats(values, self.errors[kind]) for kind, values in self.latencies.items()}
        every = [value for values in self.latencies.values() for value in values]
        return {
            "all": _stats(every, sum(self.errors.values())),
            "by_kind": dict(sorted(kinds.items())),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
        }


def _stats(values: list[float], errors: int) -> dict[str, Any]:
    ordered = sorted(values)

    def at(share: float) -> float:
        if not ordered:
            return 0.0
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)

    return {
        "requests": len(ordered),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 1) if ordered else 0.0,
        "errors": errors,
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a local process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loopback_only(base_url: str) -> str:
    """The URL, if its host resolves to loopback addresses only; otherwise exit."""
    host = urlsplit(base_url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as error:
        raise SystemExit(f"cannot resolve {host!r}: {error}") from error
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise SystemExit(
            f"{host!r} is not a loopback address: this load generator targets only 127/8 or ::1"
        )
    return base_url.rstrip("/")


def requests_for(run_id: str, loans: int, exceptions: int) -> list[tuple[str, str]]:
    """The mix: (kind, path) of paged lists, lookups and summaries over one run."""
    # Users page through the first pages (deeper pages go by the `after` cursor, not by skip).
    loan_skip = random.randrange(0, max(min(loans, MAX_SKIP) - 50, 1))
    exception_skip = random.randrange(0, max(min(exceptions, MAX_SKIP) - 50, 1))
    return [
        ("list_loans", f"/api/loans?run_id={run_id}&limit=50&skip={loan_skip}"),
        ("list_loans_rejected", f"/api/loans?run_id={run_id}&disposition=rejected&limit=50"),
        ("list_exceptions", f"/api/exceptions?run_id={run_id}&limit=50&skip={exception_skip}"),
        ("list_runs", "/api/runs?limit=20"),
        ("run", f"/api/runs/{run_id}"),
        ("progress", f"/api/runs/{run_id}/progress"),
        ("summary", f"/api/summary/{run_id}"),
    ]


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/api/auth/login", data={"username": username, "password": password}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


async def newest_run(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/runs?limit=1")
    response.raise_for_status()
    items = response.json()["items"]
    if not items:
        raise SystemExit("the gateway knows no run: run a tape first")
    return dict(items[0])


async def client_loop(
    client: httpx.AsyncClient,
    run: dict[str, Any],
    budget: list[int],
    deadline: float,
    results: Results,
    think: float = 0.0,
) -> None:
    """Send requests until the shared budget is spent or the deadline passes, pausing a random
    `think` seconds on average (exponentially distributed, as users do) after each answer."""
    loans = int(run.get("total_loans") or 0)
    exceptions = int(run.get("exceptions_count") or 0)
    if think > 0:
        # People arrive one by one, not 50 at the same millisecond: each client starts at a
        # random moment of the first think period, so arrivals are Poisson from the start.
        await asyncio.sleep(random.uniform(0, think))
    while budget[0] > 0 and time.monotonic() < deadline:
        budget[0] -= 1
        kind, path = random.choice(requests_for(str(run["run_id"]), loans, exceptions))
        started = time.perf_counter()
        try:
            response = await client.get(path)
            await response.aread()
            status: int | None = response.status_code
        except httpx.HTTPError:
            status = None
        results.record(kind, time.perf_counter() - started, status)
        if think > 0:
            await asyncio.sleep(min(random.expovariate(1 / think), deadline - time.monotonic()))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base_url = loopback_only(args.base_url)
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=args.timeout, limits=limits) as client:
        token = await login(client, args.username, args.password)
        client.headers["Authorization"] = f"Bearer {token}"
        run = (
            {"run_id": args.run_id, "total_loans": args.loans, "exceptions_count": args.loans}
            if args.run_id
            else await newest_run(client)
        )
        results, budget = Results(), [args.requests]
        deadline = time.monotonic() + args.seconds
        cpu = process_cpu_seconds(args.server_pid) if args.server_pid else 0.0
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client_loop(client, run, budget, deadline, results, args.think)
                for _ in range(args.clients)
            )
        )
        elapsed = time.perf_counter() - started
        cpu = process_cpu_seconds(args.server_pid) - cpu if args.server_pid else 0.0
    summary = results.summary()
    if args.trace:
        with args.trace.open("w") as out:
            for at, kind, seconds, status in sorted(results.trace):
                out.write(f"{at:.3f}\t{kind}\t{seconds * 1000:.1f}\t{status}\n")
    server: dict[str, float] = {}
    if args.server_pid and summary["all"]["requests"]:
        server = {"server_cpu_ms_per_request": round(cpu * 1000 / summary["all"]["requests"], 2)}
    return {
        "base_url": base_url,
        "run_id": str(run["run_id"]),
        "clients": args.clients,
        "think_seconds": args.think,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(summary["all"]["requests"] / elapsed, 1),
        **server,
        **summary,
    }


def main() -> None:
    """Parse the options, run the load and print the percentiles as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default=os.environ.get("GATEWAY_ADMIN_USERNAME", "admin"))
    parser.add_argument("--password", default=os.environ.get("GATEWAY_ADMIN_PASSWORD", ""))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5_000, help="Stop after this many.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Stop after this long.")
    parser.add_argument("--timeout", type=float, default=10.0, help="Per request.")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="Mean pause of a client between requests (0: back to back, a saturation test).",
    )
    parser.add_argument("--run-id", default=None, help="Default: the newest run.")
    parser.add_argument("--loans", type=int, default=1000, help="Loans of --run-id (paging).")
    parser.add_argument(
        "--server-pid", type=int, default=None, help="The gateway's pid: its CPU per request."
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        help="Write each request's start (Unix time), kind, milliseconds and status to this file.",
    )
    args = parser.parse_args()
    if not 1 <= args.clients <= 500 or args.requests < 1 or args.seconds <= 0 or args.think < 0:
        parser.error("clients must be 1-500, requests and seconds positive, think not negative")
    print(json.dumps(asyncio.run(main_async(args)), indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
