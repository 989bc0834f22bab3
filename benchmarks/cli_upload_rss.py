"""Peak memory of `loan-engine run FILES`'s upload, by tape size, on local storage and on S3.

    .venv/bin/python benchmarks/cli_upload_rss.py [--loans 100000 1000000] [--work DIR]

Each measurement is a fresh process that imports the whole CLI (as `loan-engine` does), uploads
one generated tape with `services.cli.pipeline.upload` and reports its peak RSS (ru_maxrss) before
and after the upload. S3 is a moto server in a process of its own on loopback (its memory is not
counted). The tape's size must not show in the peak (issue 11: flat from 100k to 1M loans). No
broker or database is needed. Numbers on a loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from services.cli.stack.ports import port_is_open
from services.ingest.tapegen import generate_tape
from tests.net import free_port

PROJECT = Path(__file__).resolve().parents[1]

CHILD = """
import asyncio, json, resource, sys
from pathlib import Path
import services.cli.main  # the CLI's own imports, as `loan-engine run` has them
from services.cli.client import CliSettings
from services.cli.pipeline import upload
from services.common.storage import S3Storage

tape, kind, endpoint, root = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
settings = CliSettings(
    _env_file=None, storage_type=kind, storage_root=root, s3_endpoint_url=endpoint, s3_bucket="rss"
)
if kind == "s3":
    asyncio.run(S3Storage("rss", endpoint, "us-east-1").ensure_bucket())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
asyncio.run(upload(settings, [tape], "bench"))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_mb": round(before / 1024), "peak_mb": round(after / 1024)}))
"""


def measure(tape: Path, kind: str, endpoint: str, root: Path) -> dict[str, int]:
    """One fresh process's peak RSS around the upload of `tape`."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tape), kind, endpoint, str(root)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for(port: int, seconds: float = 30.0) -> None:
    """Until something listens on the loopback port."""
    deadline = time.monotonic() + seconds
    while not port_is_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--work", type=Path, default=None, help="Keep tapes here (default: temp).")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cli-rss-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port)
        rows = []
        for loans in args.loans:
            tape = work / f"tape-{loans}.csv"
            if not tape.exists():
                generate_tape(tape, loans, args.seed, 0.05)
            for kind in ("local", "s3"):
                found = measure(tape, kind, f"http://127.0.0.1:{port}", work / "storage")
                rows.append({"loans": loans, "storage": kind, **found})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({"cli_upload_peak_rss": rows}, indent=2))


if __name__ == "__main__":
    main()
